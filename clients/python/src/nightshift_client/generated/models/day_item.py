from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset







T = TypeVar("T", bound="DayItem")



@_attrs_define
class DayItem:
    """ One occurrence of an item on a day, as it was when projected.

        Attributes:
            amount (int): Signed: income > 0, a bill < 0.
            id (int): The id under `/v1/users/{id}/recurring` or `/v1/users/{id}/scheduled`.
            name (str):
            source (str):
     """

    amount: int
    id: int
    name: str
    source: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        amount = self.amount

        id = self.id

        name = self.name

        source = self.source


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "amount": amount,
            "id": id,
            "name": name,
            "source": source,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        amount = d.pop("amount")

        id = d.pop("id")

        name = d.pop("name")

        source = d.pop("source")

        day_item = cls(
            amount=amount,
            id=id,
            name=name,
            source=source,
        )


        day_item.additional_properties = d
        return day_item

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="Scheduled")



@_attrs_define
class Scheduled:
    """ A one-off transaction on a date.

        Attributes:
            amount (int): Minor units, not 0.
            date (datetime.date): 1970-01-01 to 2199-12-31.
            name (str):
            id (int | None | Unset): Assigned by the server. In a bulk `PUT`, an id the user already has keeps the
                transaction under it.
     """

    amount: int
    date: datetime.date
    name: str
    id: int | None | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        amount = self.amount

        date = self.date.isoformat()

        name = self.name

        id: int | None | Unset
        if isinstance(self.id, Unset):
            id = UNSET
        else:
            id = self.id


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "amount": amount,
            "date": date,
            "name": name,
        })
        if id is not UNSET:
            field_dict["id"] = id

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        amount = d.pop("amount")

        date = datetime.date.fromisoformat(d.pop("date"))




        name = d.pop("name")

        def _parse_id(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        id = _parse_id(d.pop("id", UNSET))


        scheduled = cls(
            amount=amount,
            date=date,
            name=name,
            id=id,
        )

        return scheduled


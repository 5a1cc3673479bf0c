from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast
import datetime

if TYPE_CHECKING:
  from ..models.day_item import DayItem





T = TypeVar("T", bound="Day")



@_attrs_define
class Day:
    """ 
        Attributes:
            closing (int):
            date (datetime.date):
            inflow (int):
            items (list[DayItem]): The occurrences booked on the day, recurring items first.
            outflow (int): Positive: the sum of the day's outgoing amounts.
     """

    closing: int
    date: datetime.date
    inflow: int
    items: list[DayItem]
    outflow: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.day_item import DayItem # noqa: PLC0415
        closing = self.closing

        date = self.date.isoformat()

        inflow = self.inflow

        items = []
        for items_item_data in self.items:
            items_item = items_item_data.to_dict()
            items.append(items_item)



        outflow = self.outflow


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "closing": closing,
            "date": date,
            "inflow": inflow,
            "items": items,
            "outflow": outflow,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.day_item import DayItem # noqa: PLC0415
        d = dict(src_dict)
        closing = d.pop("closing")

        date = datetime.date.fromisoformat(d.pop("date"))




        inflow = d.pop("inflow")

        items = []
        _items = d.pop("items")
        for items_item_data in (_items):
            items_item = DayItem.from_dict(items_item_data)



            items.append(items_item)


        outflow = d.pop("outflow")

        day = cls(
            closing=closing,
            date=date,
            inflow=inflow,
            items=items,
            outflow=outflow,
        )


        day.additional_properties = d
        return day

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

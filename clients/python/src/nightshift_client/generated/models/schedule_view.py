from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast
import datetime

if TYPE_CHECKING:
  from ..models.tick import Tick





T = TypeVar("T", bound="ScheduleView")



@_attrs_define
class ScheduleView:
    """ 
        Attributes:
            cron (str): With seconds: sec min hour day-of-month month day-of-week.
            kind (str):
            misfire (str): skip or run_once.
            name (str):
            paused (bool):
            time_zone (str):
            last_tick (None | Tick | Unset):
            next_fire (datetime.datetime | None | Unset):
     """

    cron: str
    kind: str
    misfire: str
    name: str
    paused: bool
    time_zone: str
    last_tick: None | Tick | Unset = UNSET
    next_fire: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.tick import Tick # noqa: PLC0415
        cron = self.cron

        kind = self.kind

        misfire = self.misfire

        name = self.name

        paused = self.paused

        time_zone = self.time_zone

        last_tick: dict[str, Any] | None | Unset
        if isinstance(self.last_tick, Unset):
            last_tick = UNSET
        elif isinstance(self.last_tick, Tick):
            last_tick = self.last_tick.to_dict()
        else:
            last_tick = self.last_tick

        next_fire: None | str | Unset
        if isinstance(self.next_fire, Unset):
            next_fire = UNSET
        elif isinstance(self.next_fire, datetime.datetime):
            next_fire = self.next_fire.isoformat()
        else:
            next_fire = self.next_fire


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "cron": cron,
            "kind": kind,
            "misfire": misfire,
            "name": name,
            "paused": paused,
            "time_zone": time_zone,
        })
        if last_tick is not UNSET:
            field_dict["last_tick"] = last_tick
        if next_fire is not UNSET:
            field_dict["next_fire"] = next_fire

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.tick import Tick # noqa: PLC0415
        d = dict(src_dict)
        cron = d.pop("cron")

        kind = d.pop("kind")

        misfire = d.pop("misfire")

        name = d.pop("name")

        paused = d.pop("paused")

        time_zone = d.pop("time_zone")

        def _parse_last_tick(data: object) -> None | Tick | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                last_tick_type_1 = Tick.from_dict(data)



                return last_tick_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Tick | Unset, data)

        last_tick = _parse_last_tick(d.pop("last_tick", UNSET))


        def _parse_next_fire(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                next_fire_type_0 = datetime.datetime.fromisoformat(data)



                return next_fire_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        next_fire = _parse_next_fire(d.pop("next_fire", UNSET))


        schedule_view = cls(
            cron=cron,
            kind=kind,
            misfire=misfire,
            name=name,
            paused=paused,
            time_zone=time_zone,
            last_tick=last_tick,
            next_fire=next_fire,
        )


        schedule_view.additional_properties = d
        return schedule_view

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

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="Reminder")



@_attrs_define
class Reminder:
    """ A reminder as stored.

        Attributes:
            active (bool):
            channel (str): email or webhook
            created_at (datetime.datetime):
            due_date (datetime.date):
            id (int):
            lead_days (int):
            notify_time (str): HH:MM
            title (str):
            updated_at (datetime.datetime):
            user_id (int):
            amount (int | None | Unset):
            cadence (None | str | Unset):
            days_of_month (list[int] | None | Unset):
            end_date (datetime.date | None | Unset):
            interval_weeks (int | None | Unset):
            webhook_id (int | None | Unset):
     """

    active: bool
    channel: str
    created_at: datetime.datetime
    due_date: datetime.date
    id: int
    lead_days: int
    notify_time: str
    title: str
    updated_at: datetime.datetime
    user_id: int
    amount: int | None | Unset = UNSET
    cadence: None | str | Unset = UNSET
    days_of_month: list[int] | None | Unset = UNSET
    end_date: datetime.date | None | Unset = UNSET
    interval_weeks: int | None | Unset = UNSET
    webhook_id: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        active = self.active

        channel = self.channel

        created_at = self.created_at.isoformat()

        due_date = self.due_date.isoformat()

        id = self.id

        lead_days = self.lead_days

        notify_time = self.notify_time

        title = self.title

        updated_at = self.updated_at.isoformat()

        user_id = self.user_id

        amount: int | None | Unset
        if isinstance(self.amount, Unset):
            amount = UNSET
        else:
            amount = self.amount

        cadence: None | str | Unset
        if isinstance(self.cadence, Unset):
            cadence = UNSET
        else:
            cadence = self.cadence

        days_of_month: list[int] | None | Unset
        if isinstance(self.days_of_month, Unset):
            days_of_month = UNSET
        elif isinstance(self.days_of_month, list):
            days_of_month = self.days_of_month


        else:
            days_of_month = self.days_of_month

        end_date: None | str | Unset
        if isinstance(self.end_date, Unset):
            end_date = UNSET
        elif isinstance(self.end_date, datetime.date):
            end_date = self.end_date.isoformat()
        else:
            end_date = self.end_date

        interval_weeks: int | None | Unset
        if isinstance(self.interval_weeks, Unset):
            interval_weeks = UNSET
        else:
            interval_weeks = self.interval_weeks

        webhook_id: int | None | Unset
        if isinstance(self.webhook_id, Unset):
            webhook_id = UNSET
        else:
            webhook_id = self.webhook_id


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "active": active,
            "channel": channel,
            "created_at": created_at,
            "due_date": due_date,
            "id": id,
            "lead_days": lead_days,
            "notify_time": notify_time,
            "title": title,
            "updated_at": updated_at,
            "user_id": user_id,
        })
        if amount is not UNSET:
            field_dict["amount"] = amount
        if cadence is not UNSET:
            field_dict["cadence"] = cadence
        if days_of_month is not UNSET:
            field_dict["days_of_month"] = days_of_month
        if end_date is not UNSET:
            field_dict["end_date"] = end_date
        if interval_weeks is not UNSET:
            field_dict["interval_weeks"] = interval_weeks
        if webhook_id is not UNSET:
            field_dict["webhook_id"] = webhook_id

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        active = d.pop("active")

        channel = d.pop("channel")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))




        due_date = datetime.date.fromisoformat(d.pop("due_date"))




        id = d.pop("id")

        lead_days = d.pop("lead_days")

        notify_time = d.pop("notify_time")

        title = d.pop("title")

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))




        user_id = d.pop("user_id")

        def _parse_amount(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        amount = _parse_amount(d.pop("amount", UNSET))


        def _parse_cadence(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        cadence = _parse_cadence(d.pop("cadence", UNSET))


        def _parse_days_of_month(data: object) -> list[int] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                days_of_month_type_0 = cast(list[int], data)

                return days_of_month_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[int] | None | Unset, data)

        days_of_month = _parse_days_of_month(d.pop("days_of_month", UNSET))


        def _parse_end_date(data: object) -> datetime.date | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                end_date_type_0 = datetime.date.fromisoformat(data)



                return end_date_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.date | None | Unset, data)

        end_date = _parse_end_date(d.pop("end_date", UNSET))


        def _parse_interval_weeks(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        interval_weeks = _parse_interval_weeks(d.pop("interval_weeks", UNSET))


        def _parse_webhook_id(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        webhook_id = _parse_webhook_id(d.pop("webhook_id", UNSET))


        reminder = cls(
            active=active,
            channel=channel,
            created_at=created_at,
            due_date=due_date,
            id=id,
            lead_days=lead_days,
            notify_time=notify_time,
            title=title,
            updated_at=updated_at,
            user_id=user_id,
            amount=amount,
            cadence=cadence,
            days_of_month=days_of_month,
            end_date=end_date,
            interval_weeks=interval_weeks,
            webhook_id=webhook_id,
        )


        reminder.additional_properties = d
        return reminder

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

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.channel import Channel
from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="ReminderBody")



@_attrs_define
class ReminderBody:
    """ A reminder as clients write it (create and replace).

        Attributes:
            channel (Channel):
            due_date (datetime.date): The (first) due date.
            title (str): 1 to 200 characters.
            active (bool | None | Unset):
            amount (int | None | Unset): Minor units; shown in the notification.
            cadence (None | str | Unset): weekly, biweekly, every_n_weeks, semi_monthly, monthly, monthly_last_day or
                yearly;
                once when absent.
            days_of_month (list[int] | None | Unset): semi_monthly: the two days of the month.
            end_date (datetime.date | None | Unset):
            interval_weeks (int | None | Unset): every_n_weeks: the period in weeks (1 to 52).
            lead_days (int | None | Unset): Days before the due date to notify (0 to 60).
            notify_time (None | str | Unset): Local time of the notification, HH:MM in the user's time zone (09:00 when
                absent).
            webhook_id (int | None | Unset): The endpoint for the webhook channel.
     """

    channel: Channel
    due_date: datetime.date
    title: str
    active: bool | None | Unset = UNSET
    amount: int | None | Unset = UNSET
    cadence: None | str | Unset = UNSET
    days_of_month: list[int] | None | Unset = UNSET
    end_date: datetime.date | None | Unset = UNSET
    interval_weeks: int | None | Unset = UNSET
    lead_days: int | None | Unset = UNSET
    notify_time: None | str | Unset = UNSET
    webhook_id: int | None | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        channel = self.channel.value

        due_date = self.due_date.isoformat()

        title = self.title

        active: bool | None | Unset
        if isinstance(self.active, Unset):
            active = UNSET
        else:
            active = self.active

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

        lead_days: int | None | Unset
        if isinstance(self.lead_days, Unset):
            lead_days = UNSET
        else:
            lead_days = self.lead_days

        notify_time: None | str | Unset
        if isinstance(self.notify_time, Unset):
            notify_time = UNSET
        else:
            notify_time = self.notify_time

        webhook_id: int | None | Unset
        if isinstance(self.webhook_id, Unset):
            webhook_id = UNSET
        else:
            webhook_id = self.webhook_id


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "channel": channel,
            "due_date": due_date,
            "title": title,
        })
        if active is not UNSET:
            field_dict["active"] = active
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
        if lead_days is not UNSET:
            field_dict["lead_days"] = lead_days
        if notify_time is not UNSET:
            field_dict["notify_time"] = notify_time
        if webhook_id is not UNSET:
            field_dict["webhook_id"] = webhook_id

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        channel = Channel(d.pop("channel"))




        due_date = datetime.date.fromisoformat(d.pop("due_date"))




        title = d.pop("title")

        def _parse_active(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        active = _parse_active(d.pop("active", UNSET))


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


        def _parse_lead_days(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        lead_days = _parse_lead_days(d.pop("lead_days", UNSET))


        def _parse_notify_time(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        notify_time = _parse_notify_time(d.pop("notify_time", UNSET))


        def _parse_webhook_id(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        webhook_id = _parse_webhook_id(d.pop("webhook_id", UNSET))


        reminder_body = cls(
            channel=channel,
            due_date=due_date,
            title=title,
            active=active,
            amount=amount,
            cadence=cadence,
            days_of_month=days_of_month,
            end_date=end_date,
            interval_weeks=interval_weeks,
            lead_days=lead_days,
            notify_time=notify_time,
            webhook_id=webhook_id,
        )

        return reminder_body


from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="RecurringItem")



@_attrs_define
class RecurringItem:
    """ Income (amount > 0) or a bill (amount < 0) that repeats.

        Attributes:
            amount (int): Minor units, not 0: income > 0, a bill < 0.
            anchor_date (datetime.date): The first occurrence (1970-01-01 to 2199-12-31); monthly items fall on its day,
                clamped to short months.
            cadence (str): weekly, biweekly, every_n_weeks, semi_monthly, monthly, monthly_last_day or yearly.
            name (str):
            business_day (None | str | Unset): Where a date on a weekend moves: `previous` (Friday), `next` (Monday) or
                `none`.
                When absent, income moves to the previous business day and a bill to the next.
            days_of_month (list[int] | None | Unset): semi_monthly only: two increasing days of the month, 1 to 31.
            end_date (datetime.date | None | Unset): No occurrence after this date.
            id (int | None | Unset): Assigned by the server. In a bulk `PUT`, an id the user already has keeps the item
                under it.
            interval_weeks (int | None | Unset): every_n_weeks only: the period, 1 to 52 weeks.
            occurrences (int | None | Unset): Stop after this many occurrences (1 to 100,000).
     """

    amount: int
    anchor_date: datetime.date
    cadence: str
    name: str
    business_day: None | str | Unset = UNSET
    days_of_month: list[int] | None | Unset = UNSET
    end_date: datetime.date | None | Unset = UNSET
    id: int | None | Unset = UNSET
    interval_weeks: int | None | Unset = UNSET
    occurrences: int | None | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        amount = self.amount

        anchor_date = self.anchor_date.isoformat()

        cadence = self.cadence

        name = self.name

        business_day: None | str | Unset
        if isinstance(self.business_day, Unset):
            business_day = UNSET
        else:
            business_day = self.business_day

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

        id: int | None | Unset
        if isinstance(self.id, Unset):
            id = UNSET
        else:
            id = self.id

        interval_weeks: int | None | Unset
        if isinstance(self.interval_weeks, Unset):
            interval_weeks = UNSET
        else:
            interval_weeks = self.interval_weeks

        occurrences: int | None | Unset
        if isinstance(self.occurrences, Unset):
            occurrences = UNSET
        else:
            occurrences = self.occurrences


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "amount": amount,
            "anchor_date": anchor_date,
            "cadence": cadence,
            "name": name,
        })
        if business_day is not UNSET:
            field_dict["business_day"] = business_day
        if days_of_month is not UNSET:
            field_dict["days_of_month"] = days_of_month
        if end_date is not UNSET:
            field_dict["end_date"] = end_date
        if id is not UNSET:
            field_dict["id"] = id
        if interval_weeks is not UNSET:
            field_dict["interval_weeks"] = interval_weeks
        if occurrences is not UNSET:
            field_dict["occurrences"] = occurrences

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        amount = d.pop("amount")

        anchor_date = datetime.date.fromisoformat(d.pop("anchor_date"))




        cadence = d.pop("cadence")

        name = d.pop("name")

        def _parse_business_day(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        business_day = _parse_business_day(d.pop("business_day", UNSET))


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


        def _parse_id(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        id = _parse_id(d.pop("id", UNSET))


        def _parse_interval_weeks(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        interval_weeks = _parse_interval_weeks(d.pop("interval_weeks", UNSET))


        def _parse_occurrences(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        occurrences = _parse_occurrences(d.pop("occurrences", UNSET))


        recurring_item = cls(
            amount=amount,
            anchor_date=anchor_date,
            cadence=cadence,
            name=name,
            business_day=business_day,
            days_of_month=days_of_month,
            end_date=end_date,
            id=id,
            interval_weeks=interval_weeks,
            occurrences=occurrences,
        )

        return recurring_item


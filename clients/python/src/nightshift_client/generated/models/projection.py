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
  from ..models.day import Day
  from ..models.shortfall import Shortfall





T = TypeVar("T", bound="Projection")



@_attrs_define
class Projection:
    """ A user's projected balance, day by day, in minor units of the user's currency.

        Attributes:
            as_of (datetime.date):
            computed_at (datetime.datetime):
            currency (str): ISO 4217 code of every amount.
            days (list[Day]):
            include_as_of (bool): Whether the balances were taken to hold the items of the day they were read.
            lowest_balance (int):
            lowest_date (datetime.date):
            opening (int): The balance before `as_of`'s items.
            role (str): `current`: the newest projection as of a day up to the user's today (in their time
                zone); `what_if`: one refreshed for another date, which never replaces the current one.
            user_id (int):
            balance_date (datetime.date | None | Unset): The newest `balance_date` of the user's accounts, if any carries
                one: their balances
                were rolled from that day to `as_of` by the items in between.
            first_below_zero (datetime.date | None | Unset): The first day whose closing balance is below zero, if any.
            shortfall (None | Shortfall | Unset):
     """

    as_of: datetime.date
    computed_at: datetime.datetime
    currency: str
    days: list[Day]
    include_as_of: bool
    lowest_balance: int
    lowest_date: datetime.date
    opening: int
    role: str
    user_id: int
    balance_date: datetime.date | None | Unset = UNSET
    first_below_zero: datetime.date | None | Unset = UNSET
    shortfall: None | Shortfall | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.day import Day # noqa: PLC0415
        from ..models.shortfall import Shortfall # noqa: PLC0415
        as_of = self.as_of.isoformat()

        computed_at = self.computed_at.isoformat()

        currency = self.currency

        days = []
        for days_item_data in self.days:
            days_item = days_item_data.to_dict()
            days.append(days_item)



        include_as_of = self.include_as_of

        lowest_balance = self.lowest_balance

        lowest_date = self.lowest_date.isoformat()

        opening = self.opening

        role = self.role

        user_id = self.user_id

        balance_date: None | str | Unset
        if isinstance(self.balance_date, Unset):
            balance_date = UNSET
        elif isinstance(self.balance_date, datetime.date):
            balance_date = self.balance_date.isoformat()
        else:
            balance_date = self.balance_date

        first_below_zero: None | str | Unset
        if isinstance(self.first_below_zero, Unset):
            first_below_zero = UNSET
        elif isinstance(self.first_below_zero, datetime.date):
            first_below_zero = self.first_below_zero.isoformat()
        else:
            first_below_zero = self.first_below_zero

        shortfall: dict[str, Any] | None | Unset
        if isinstance(self.shortfall, Unset):
            shortfall = UNSET
        elif isinstance(self.shortfall, Shortfall):
            shortfall = self.shortfall.to_dict()
        else:
            shortfall = self.shortfall


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "as_of": as_of,
            "computed_at": computed_at,
            "currency": currency,
            "days": days,
            "include_as_of": include_as_of,
            "lowest_balance": lowest_balance,
            "lowest_date": lowest_date,
            "opening": opening,
            "role": role,
            "user_id": user_id,
        })
        if balance_date is not UNSET:
            field_dict["balance_date"] = balance_date
        if first_below_zero is not UNSET:
            field_dict["first_below_zero"] = first_below_zero
        if shortfall is not UNSET:
            field_dict["shortfall"] = shortfall

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.day import Day # noqa: PLC0415
        from ..models.shortfall import Shortfall # noqa: PLC0415
        d = dict(src_dict)
        as_of = datetime.date.fromisoformat(d.pop("as_of"))




        computed_at = datetime.datetime.fromisoformat(d.pop("computed_at"))




        currency = d.pop("currency")

        days = []
        _days = d.pop("days")
        for days_item_data in (_days):
            days_item = Day.from_dict(days_item_data)



            days.append(days_item)


        include_as_of = d.pop("include_as_of")

        lowest_balance = d.pop("lowest_balance")

        lowest_date = datetime.date.fromisoformat(d.pop("lowest_date"))




        opening = d.pop("opening")

        role = d.pop("role")

        user_id = d.pop("user_id")

        def _parse_balance_date(data: object) -> datetime.date | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                balance_date_type_0 = datetime.date.fromisoformat(data)



                return balance_date_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.date | None | Unset, data)

        balance_date = _parse_balance_date(d.pop("balance_date", UNSET))


        def _parse_first_below_zero(data: object) -> datetime.date | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                first_below_zero_type_0 = datetime.date.fromisoformat(data)



                return first_below_zero_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.date | None | Unset, data)

        first_below_zero = _parse_first_below_zero(d.pop("first_below_zero", UNSET))


        def _parse_shortfall(data: object) -> None | Shortfall | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                shortfall_type_1 = Shortfall.from_dict(data)



                return shortfall_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Shortfall | Unset, data)

        shortfall = _parse_shortfall(d.pop("shortfall", UNSET))


        projection = cls(
            as_of=as_of,
            computed_at=computed_at,
            currency=currency,
            days=days,
            include_as_of=include_as_of,
            lowest_balance=lowest_balance,
            lowest_date=lowest_date,
            opening=opening,
            role=role,
            user_id=user_id,
            balance_date=balance_date,
            first_below_zero=first_below_zero,
            shortfall=shortfall,
        )


        projection.additional_properties = d
        return projection

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

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.account import Account
  from ..models.recurring_item import RecurringItem
  from ..models.scheduled import Scheduled





T = TypeVar("T", bound="Finance")



@_attrs_define
class Finance:
    """ Everything the projection knows of a user.

        Attributes:
            email (str): Where low-balance alerts go.
            accounts (list[Account] | Unset):
            currency (None | str | Unset): ISO 4217 code; EUR when absent.
            low_balance_threshold (int | Unset): A projected balance below this (minor units) is a shortfall; 0 when absent.
            recurring (list[RecurringItem] | Unset): Income (amount > 0) and bills (amount < 0) that repeat.
            scheduled (list[Scheduled] | Unset): One-off transactions on a date.
            time_zone (None | str | Unset): An IANA time zone (`Europe/Paris`); UTC when absent.
     """

    email: str
    accounts: list[Account] | Unset = UNSET
    currency: None | str | Unset = UNSET
    low_balance_threshold: int | Unset = UNSET
    recurring: list[RecurringItem] | Unset = UNSET
    scheduled: list[Scheduled] | Unset = UNSET
    time_zone: None | str | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.account import Account # noqa: PLC0415
        from ..models.recurring_item import RecurringItem # noqa: PLC0415
        from ..models.scheduled import Scheduled # noqa: PLC0415
        email = self.email

        accounts: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.accounts, Unset):
            accounts = []
            for accounts_item_data in self.accounts:
                accounts_item = accounts_item_data.to_dict()
                accounts.append(accounts_item)



        currency: None | str | Unset
        if isinstance(self.currency, Unset):
            currency = UNSET
        else:
            currency = self.currency

        low_balance_threshold = self.low_balance_threshold

        recurring: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.recurring, Unset):
            recurring = []
            for recurring_item_data in self.recurring:
                recurring_item = recurring_item_data.to_dict()
                recurring.append(recurring_item)



        scheduled: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.scheduled, Unset):
            scheduled = []
            for scheduled_item_data in self.scheduled:
                scheduled_item = scheduled_item_data.to_dict()
                scheduled.append(scheduled_item)



        time_zone: None | str | Unset
        if isinstance(self.time_zone, Unset):
            time_zone = UNSET
        else:
            time_zone = self.time_zone


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "email": email,
        })
        if accounts is not UNSET:
            field_dict["accounts"] = accounts
        if currency is not UNSET:
            field_dict["currency"] = currency
        if low_balance_threshold is not UNSET:
            field_dict["low_balance_threshold"] = low_balance_threshold
        if recurring is not UNSET:
            field_dict["recurring"] = recurring
        if scheduled is not UNSET:
            field_dict["scheduled"] = scheduled
        if time_zone is not UNSET:
            field_dict["time_zone"] = time_zone

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.account import Account # noqa: PLC0415
        from ..models.recurring_item import RecurringItem # noqa: PLC0415
        from ..models.scheduled import Scheduled # noqa: PLC0415
        d = dict(src_dict)
        email = d.pop("email")

        _accounts = d.pop("accounts", UNSET)
        accounts: list[Account] | Unset = UNSET
        if _accounts is not UNSET:
            accounts = []
            for accounts_item_data in _accounts:
                accounts_item = Account.from_dict(accounts_item_data)



                accounts.append(accounts_item)


        def _parse_currency(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        currency = _parse_currency(d.pop("currency", UNSET))


        low_balance_threshold = d.pop("low_balance_threshold", UNSET)

        _recurring = d.pop("recurring", UNSET)
        recurring: list[RecurringItem] | Unset = UNSET
        if _recurring is not UNSET:
            recurring = []
            for recurring_item_data in _recurring:
                recurring_item = RecurringItem.from_dict(recurring_item_data)



                recurring.append(recurring_item)


        _scheduled = d.pop("scheduled", UNSET)
        scheduled: list[Scheduled] | Unset = UNSET
        if _scheduled is not UNSET:
            scheduled = []
            for scheduled_item_data in _scheduled:
                scheduled_item = Scheduled.from_dict(scheduled_item_data)



                scheduled.append(scheduled_item)


        def _parse_time_zone(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        time_zone = _parse_time_zone(d.pop("time_zone", UNSET))


        finance = cls(
            email=email,
            accounts=accounts,
            currency=currency,
            low_balance_threshold=low_balance_threshold,
            recurring=recurring,
            scheduled=scheduled,
            time_zone=time_zone,
        )

        return finance


from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="Account")



@_attrs_define
class Account:
    """ 
        Attributes:
            balance (int): Minor units.
            name (str):
            balance_date (datetime.date | None | Unset): The day the balance was read (its items are in it or not as a
                refresh's
                `include_as_of` says). A projection from another day rolls it by the items in between.
                Without it, the balance stands for whatever day is projected. Accounts are taken as
                read together, on the newest of their dates: items belong to the user, not an account.
            id (int | None | Unset): Assigned by the server. In a bulk `PUT`, an id the user already has keeps the account
                under it.
     """

    balance: int
    name: str
    balance_date: datetime.date | None | Unset = UNSET
    id: int | None | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        balance = self.balance

        name = self.name

        balance_date: None | str | Unset
        if isinstance(self.balance_date, Unset):
            balance_date = UNSET
        elif isinstance(self.balance_date, datetime.date):
            balance_date = self.balance_date.isoformat()
        else:
            balance_date = self.balance_date

        id: int | None | Unset
        if isinstance(self.id, Unset):
            id = UNSET
        else:
            id = self.id


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "balance": balance,
            "name": name,
        })
        if balance_date is not UNSET:
            field_dict["balance_date"] = balance_date
        if id is not UNSET:
            field_dict["id"] = id

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        balance = d.pop("balance")

        name = d.pop("name")

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


        def _parse_id(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        id = _parse_id(d.pop("id", UNSET))


        account = cls(
            balance=balance,
            name=name,
            balance_date=balance_date,
            id=id,
        )

        return account


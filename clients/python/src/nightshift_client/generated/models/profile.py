from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset






T = TypeVar("T", bound="Profile")



@_attrs_define
class Profile:
    """ Who the user is to the projection: where alerts go, their calendar and currency.

        Attributes:
            email (str): Where low-balance alerts go.
            currency (str | Unset): ISO 4217 code, three capital letters; EUR when absent.
            low_balance_threshold (int | Unset): A projected balance below this (minor units) is a shortfall; 0 when absent.
            time_zone (str | Unset): An IANA time zone (`Europe/Paris`); UTC when absent. "Today" is the user's today.
     """

    email: str
    currency: str | Unset = UNSET
    low_balance_threshold: int | Unset = UNSET
    time_zone: str | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        email = self.email

        currency = self.currency

        low_balance_threshold = self.low_balance_threshold

        time_zone = self.time_zone


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "email": email,
        })
        if currency is not UNSET:
            field_dict["currency"] = currency
        if low_balance_threshold is not UNSET:
            field_dict["low_balance_threshold"] = low_balance_threshold
        if time_zone is not UNSET:
            field_dict["time_zone"] = time_zone

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        email = d.pop("email")

        currency = d.pop("currency", UNSET)

        low_balance_threshold = d.pop("low_balance_threshold", UNSET)

        time_zone = d.pop("time_zone", UNSET)

        profile = cls(
            email=email,
            currency=currency,
            low_balance_threshold=low_balance_threshold,
            time_zone=time_zone,
        )

        return profile


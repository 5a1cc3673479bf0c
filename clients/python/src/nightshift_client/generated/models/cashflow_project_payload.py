from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="CashflowProjectPayload")



@_attrs_define
class CashflowProjectPayload:
    """ The payload of `cashflow.project`.

        Attributes:
            user_id (int):
            as_of (datetime.date | None | Unset): The user's local date to project from; defaults to today in the user's
                time zone.
            horizon_days (int | None | Unset): Days to project, 1 to 366; 90 when absent.
            include_as_of (bool | Unset): Whether balances already hold their day's items (the bank booked today's payday).
     """

    user_id: int
    as_of: datetime.date | None | Unset = UNSET
    horizon_days: int | None | Unset = UNSET
    include_as_of: bool | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        user_id = self.user_id

        as_of: None | str | Unset
        if isinstance(self.as_of, Unset):
            as_of = UNSET
        elif isinstance(self.as_of, datetime.date):
            as_of = self.as_of.isoformat()
        else:
            as_of = self.as_of

        horizon_days: int | None | Unset
        if isinstance(self.horizon_days, Unset):
            horizon_days = UNSET
        else:
            horizon_days = self.horizon_days

        include_as_of = self.include_as_of


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "user_id": user_id,
        })
        if as_of is not UNSET:
            field_dict["as_of"] = as_of
        if horizon_days is not UNSET:
            field_dict["horizon_days"] = horizon_days
        if include_as_of is not UNSET:
            field_dict["include_as_of"] = include_as_of

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        user_id = d.pop("user_id")

        def _parse_as_of(data: object) -> datetime.date | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                as_of_type_0 = datetime.date.fromisoformat(data)



                return as_of_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.date | None | Unset, data)

        as_of = _parse_as_of(d.pop("as_of", UNSET))


        def _parse_horizon_days(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        horizon_days = _parse_horizon_days(d.pop("horizon_days", UNSET))


        include_as_of = d.pop("include_as_of", UNSET)

        cashflow_project_payload = cls(
            user_id=user_id,
            as_of=as_of,
            horizon_days=horizon_days,
            include_as_of=include_as_of,
        )

        return cashflow_project_payload


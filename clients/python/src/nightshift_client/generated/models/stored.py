from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset







T = TypeVar("T", bound="Stored")



@_attrs_define
class Stored:
    """ What a replacement stored, and the projection it queued.

        Attributes:
            accounts (int):
            recurring (int):
            refresh_job (str): The `cashflow.project` job computing the new projection.
            scheduled (int):
            user_id (int):
     """

    accounts: int
    recurring: int
    refresh_job: str
    scheduled: int
    user_id: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        accounts = self.accounts

        recurring = self.recurring

        refresh_job = self.refresh_job

        scheduled = self.scheduled

        user_id = self.user_id


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "accounts": accounts,
            "recurring": recurring,
            "refresh_job": refresh_job,
            "scheduled": scheduled,
            "user_id": user_id,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        accounts = d.pop("accounts")

        recurring = d.pop("recurring")

        refresh_job = d.pop("refresh_job")

        scheduled = d.pop("scheduled")

        user_id = d.pop("user_id")

        stored = cls(
            accounts=accounts,
            recurring=recurring,
            refresh_job=refresh_job,
            scheduled=scheduled,
            user_id=user_id,
        )


        stored.additional_properties = d
        return stored

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

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="Key")



@_attrs_define
class Key:
    """ A signing key, never its secret.

        Attributes:
            created_at (datetime.datetime):
            kid (str):
            status (str): active, previous or retired.
            retire_after (datetime.datetime | None | Unset): Until when a previous key still verifies tokens.
     """

    created_at: datetime.datetime
    kid: str
    status: str
    retire_after: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        kid = self.kid

        status = self.status

        retire_after: None | str | Unset
        if isinstance(self.retire_after, Unset):
            retire_after = UNSET
        elif isinstance(self.retire_after, datetime.datetime):
            retire_after = self.retire_after.isoformat()
        else:
            retire_after = self.retire_after


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "created_at": created_at,
            "kid": kid,
            "status": status,
        })
        if retire_after is not UNSET:
            field_dict["retire_after"] = retire_after

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))




        kid = d.pop("kid")

        status = d.pop("status")

        def _parse_retire_after(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                retire_after_type_0 = datetime.datetime.fromisoformat(data)



                return retire_after_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        retire_after = _parse_retire_after(d.pop("retire_after", UNSET))


        key = cls(
            created_at=created_at,
            kid=kid,
            status=status,
            retire_after=retire_after,
        )


        key.additional_properties = d
        return key

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

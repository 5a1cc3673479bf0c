from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast
import datetime






T = TypeVar("T", bound="StoredProjection")



@_attrs_define
class StoredProjection:
    """ A stored projection, as listed.

        Attributes:
            as_of (datetime.date):
            computed_at (datetime.datetime):
            role (str):
     """

    as_of: datetime.date
    computed_at: datetime.datetime
    role: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        as_of = self.as_of.isoformat()

        computed_at = self.computed_at.isoformat()

        role = self.role


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "as_of": as_of,
            "computed_at": computed_at,
            "role": role,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        as_of = datetime.date.fromisoformat(d.pop("as_of"))




        computed_at = datetime.datetime.fromisoformat(d.pop("computed_at"))




        role = d.pop("role")

        stored_projection = cls(
            as_of=as_of,
            computed_at=computed_at,
            role=role,
        )


        stored_projection.additional_properties = d
        return stored_projection

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

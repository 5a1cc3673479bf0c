from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="CallbackStatus")



@_attrs_define
class CallbackStatus:
    """ 
        Attributes:
            kind (str):
            on (str): `complete` or `success`.
            job_id (None | str | Unset): Its job, once the batch finished (`on_success` has none when a job failed).
            job_state (None | str | Unset): Its job's state, when known.
     """

    kind: str
    on: str
    job_id: None | str | Unset = UNSET
    job_state: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        kind = self.kind

        on = self.on

        job_id: None | str | Unset
        if isinstance(self.job_id, Unset):
            job_id = UNSET
        else:
            job_id = self.job_id

        job_state: None | str | Unset
        if isinstance(self.job_state, Unset):
            job_state = UNSET
        else:
            job_state = self.job_state


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "kind": kind,
            "on": on,
        })
        if job_id is not UNSET:
            field_dict["job_id"] = job_id
        if job_state is not UNSET:
            field_dict["job_state"] = job_state

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        kind = d.pop("kind")

        on = d.pop("on")

        def _parse_job_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        job_id = _parse_job_id(d.pop("job_id", UNSET))


        def _parse_job_state(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        job_state = _parse_job_state(d.pop("job_state", UNSET))


        callback_status = cls(
            kind=kind,
            on=on,
            job_id=job_id,
            job_state=job_state,
        )


        callback_status.additional_properties = d
        return callback_status

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

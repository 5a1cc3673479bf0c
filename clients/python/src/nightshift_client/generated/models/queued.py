from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="Queued")



@_attrs_define
class Queued:
    """ 
        Attributes:
            created (bool): False when the key was already used: nothing new was queued.
            idempotency_key (str):
            message_id (str): The Message-ID header the e-mail carries (and keeps on a resend).
            job_id (None | str | Unset): The `email.send` job; null once the e-mail was sent or failed.
     """

    created: bool
    idempotency_key: str
    message_id: str
    job_id: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        created = self.created

        idempotency_key = self.idempotency_key

        message_id = self.message_id

        job_id: None | str | Unset
        if isinstance(self.job_id, Unset):
            job_id = UNSET
        else:
            job_id = self.job_id


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "created": created,
            "idempotency_key": idempotency_key,
            "message_id": message_id,
        })
        if job_id is not UNSET:
            field_dict["job_id"] = job_id

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        created = d.pop("created")

        idempotency_key = d.pop("idempotency_key")

        message_id = d.pop("message_id")

        def _parse_job_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        job_id = _parse_job_id(d.pop("job_id", UNSET))


        queued = cls(
            created=created,
            idempotency_key=idempotency_key,
            message_id=message_id,
            job_id=job_id,
        )


        queued.additional_properties = d
        return queued

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

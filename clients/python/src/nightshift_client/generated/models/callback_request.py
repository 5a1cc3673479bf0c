from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.callback_request_payload import CallbackRequestPayload





T = TypeVar("T", bound="CallbackRequest")



@_attrs_define
class CallbackRequest:
    """ A callback job: a kind the caller may enqueue whose payload takes a `batch` field, where the
    batch's outcome is put (`id`, `total`, `succeeded`, `dead`, `cancelled`, `dead_ids`: the
    first 100 dead jobs).

        Attributes:
            kind (str):
            payload (CallbackRequestPayload | Unset):
     """

    kind: str
    payload: CallbackRequestPayload | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.callback_request_payload import CallbackRequestPayload # noqa: PLC0415
        kind = self.kind

        payload: dict[str, Any] | Unset = UNSET
        if not isinstance(self.payload, Unset):
            payload = self.payload.to_dict()


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "kind": kind,
        })
        if payload is not UNSET:
            field_dict["payload"] = payload

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.callback_request_payload import CallbackRequestPayload # noqa: PLC0415
        d = dict(src_dict)
        kind = d.pop("kind")

        _payload = d.pop("payload", UNSET)
        payload: CallbackRequestPayload | Unset
        if isinstance(_payload,  Unset):
            payload = UNSET
        else:
            payload = CallbackRequestPayload.from_dict(_payload)




        callback_request = cls(
            kind=kind,
            payload=payload,
        )

        return callback_request


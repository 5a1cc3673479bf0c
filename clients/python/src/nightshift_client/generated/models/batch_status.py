from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast
import datetime

if TYPE_CHECKING:
  from ..models.callback_status import CallbackStatus





T = TypeVar("T", bound="BatchStatus")



@_attrs_define
class BatchStatus:
    """ 
        Attributes:
            callbacks (list[CallbackStatus]):
            cancelled (int):
            created_at (datetime.datetime):
            dead (int):
            id (str):
            pending (int): Jobs not finished yet.
            state (str): `open` (jobs may be added), `sealed` (waiting for its jobs) or `finished`.
            succeeded (int):
            total (int):
            description (None | str | Unset):
            finished_at (datetime.datetime | None | Unset):
            sealed_at (datetime.datetime | None | Unset):
     """

    callbacks: list[CallbackStatus]
    cancelled: int
    created_at: datetime.datetime
    dead: int
    id: str
    pending: int
    state: str
    succeeded: int
    total: int
    description: None | str | Unset = UNSET
    finished_at: datetime.datetime | None | Unset = UNSET
    sealed_at: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.callback_status import CallbackStatus # noqa: PLC0415
        callbacks = []
        for callbacks_item_data in self.callbacks:
            callbacks_item = callbacks_item_data.to_dict()
            callbacks.append(callbacks_item)



        cancelled = self.cancelled

        created_at = self.created_at.isoformat()

        dead = self.dead

        id = self.id

        pending = self.pending

        state = self.state

        succeeded = self.succeeded

        total = self.total

        description: None | str | Unset
        if isinstance(self.description, Unset):
            description = UNSET
        else:
            description = self.description

        finished_at: None | str | Unset
        if isinstance(self.finished_at, Unset):
            finished_at = UNSET
        elif isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        sealed_at: None | str | Unset
        if isinstance(self.sealed_at, Unset):
            sealed_at = UNSET
        elif isinstance(self.sealed_at, datetime.datetime):
            sealed_at = self.sealed_at.isoformat()
        else:
            sealed_at = self.sealed_at


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "callbacks": callbacks,
            "cancelled": cancelled,
            "created_at": created_at,
            "dead": dead,
            "id": id,
            "pending": pending,
            "state": state,
            "succeeded": succeeded,
            "total": total,
        })
        if description is not UNSET:
            field_dict["description"] = description
        if finished_at is not UNSET:
            field_dict["finished_at"] = finished_at
        if sealed_at is not UNSET:
            field_dict["sealed_at"] = sealed_at

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.callback_status import CallbackStatus # noqa: PLC0415
        d = dict(src_dict)
        callbacks = []
        _callbacks = d.pop("callbacks")
        for callbacks_item_data in (_callbacks):
            callbacks_item = CallbackStatus.from_dict(callbacks_item_data)



            callbacks.append(callbacks_item)


        cancelled = d.pop("cancelled")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))




        dead = d.pop("dead")

        id = d.pop("id")

        pending = d.pop("pending")

        state = d.pop("state")

        succeeded = d.pop("succeeded")

        total = d.pop("total")

        def _parse_description(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        description = _parse_description(d.pop("description", UNSET))


        def _parse_finished_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)



                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        finished_at = _parse_finished_at(d.pop("finished_at", UNSET))


        def _parse_sealed_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                sealed_at_type_0 = datetime.datetime.fromisoformat(data)



                return sealed_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        sealed_at = _parse_sealed_at(d.pop("sealed_at", UNSET))


        batch_status = cls(
            callbacks=callbacks,
            cancelled=cancelled,
            created_at=created_at,
            dead=dead,
            id=id,
            pending=pending,
            state=state,
            succeeded=succeeded,
            total=total,
            description=description,
            finished_at=finished_at,
            sealed_at=sealed_at,
        )


        batch_status.additional_properties = d
        return batch_status

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

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.callback_request import CallbackRequest
  from ..models.enqueue_request import EnqueueRequest





T = TypeVar("T", bound="CreateBatch")



@_attrs_define
class CreateBatch:
    """ 
        Attributes:
            description (None | str | Unset): Up to 200 characters, for people.
            jobs (list[EnqueueRequest] | Unset): Up to 1,000 jobs, each as in `POST /v1/jobs` but without `dedupe` or an
                idempotency key
                (a job taken in by an earlier one would not be the batch's).
            on_complete (CallbackRequest | None | Unset):
            on_success (CallbackRequest | None | Unset):
            open_ (bool | Unset): Keep the batch open for more jobs (`POST /v1/batches/{id}/jobs`) until it is sealed;
                false (the default) seals it with these jobs.
     """

    description: None | str | Unset = UNSET
    jobs: list[EnqueueRequest] | Unset = UNSET
    on_complete: CallbackRequest | None | Unset = UNSET
    on_success: CallbackRequest | None | Unset = UNSET
    open_: bool | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.callback_request import CallbackRequest # noqa: PLC0415
        from ..models.enqueue_request import EnqueueRequest # noqa: PLC0415
        description: None | str | Unset
        if isinstance(self.description, Unset):
            description = UNSET
        else:
            description = self.description

        jobs: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.jobs, Unset):
            jobs = []
            for jobs_item_data in self.jobs:
                jobs_item = jobs_item_data.to_dict()
                jobs.append(jobs_item)



        on_complete: dict[str, Any] | None | Unset
        if isinstance(self.on_complete, Unset):
            on_complete = UNSET
        elif isinstance(self.on_complete, CallbackRequest):
            on_complete = self.on_complete.to_dict()
        else:
            on_complete = self.on_complete

        on_success: dict[str, Any] | None | Unset
        if isinstance(self.on_success, Unset):
            on_success = UNSET
        elif isinstance(self.on_success, CallbackRequest):
            on_success = self.on_success.to_dict()
        else:
            on_success = self.on_success

        open_ = self.open_


        field_dict: dict[str, Any] = {}

        field_dict.update({
        })
        if description is not UNSET:
            field_dict["description"] = description
        if jobs is not UNSET:
            field_dict["jobs"] = jobs
        if on_complete is not UNSET:
            field_dict["on_complete"] = on_complete
        if on_success is not UNSET:
            field_dict["on_success"] = on_success
        if open_ is not UNSET:
            field_dict["open"] = open_

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.callback_request import CallbackRequest # noqa: PLC0415
        from ..models.enqueue_request import EnqueueRequest # noqa: PLC0415
        d = dict(src_dict)
        def _parse_description(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        description = _parse_description(d.pop("description", UNSET))


        _jobs = d.pop("jobs", UNSET)
        jobs: list[EnqueueRequest] | Unset = UNSET
        if _jobs is not UNSET:
            jobs = []
            for jobs_item_data in _jobs:
                jobs_item = EnqueueRequest.from_dict(jobs_item_data)



                jobs.append(jobs_item)


        def _parse_on_complete(data: object) -> CallbackRequest | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                on_complete_type_1 = CallbackRequest.from_dict(data)



                return on_complete_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(CallbackRequest | None | Unset, data)

        on_complete = _parse_on_complete(d.pop("on_complete", UNSET))


        def _parse_on_success(data: object) -> CallbackRequest | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                on_success_type_1 = CallbackRequest.from_dict(data)



                return on_success_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(CallbackRequest | None | Unset, data)

        on_success = _parse_on_success(d.pop("on_success", UNSET))


        open_ = d.pop("open", UNSET)

        create_batch = cls(
            description=description,
            jobs=jobs,
            on_complete=on_complete,
            on_success=on_success,
            open_=open_,
        )

        return create_batch


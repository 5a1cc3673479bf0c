from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.enqueue_request import EnqueueRequest





T = TypeVar("T", bound="AddJobs")



@_attrs_define
class AddJobs:
    """ 
        Attributes:
            jobs (list[EnqueueRequest]): 1 to 1,000 jobs, as in `POST /v1/batches`.
     """

    jobs: list[EnqueueRequest]





    def to_dict(self) -> dict[str, Any]:
        from ..models.enqueue_request import EnqueueRequest # noqa: PLC0415
        jobs = []
        for jobs_item_data in self.jobs:
            jobs_item = jobs_item_data.to_dict()
            jobs.append(jobs_item)




        field_dict: dict[str, Any] = {}

        field_dict.update({
            "jobs": jobs,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.enqueue_request import EnqueueRequest # noqa: PLC0415
        d = dict(src_dict)
        jobs = []
        _jobs = d.pop("jobs")
        for jobs_item_data in (_jobs):
            jobs_item = EnqueueRequest.from_dict(jobs_item_data)



            jobs.append(jobs_item)


        add_jobs = cls(
            jobs=jobs,
        )

        return add_jobs


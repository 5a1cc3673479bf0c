from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="DedupeRequest")



@_attrs_define
class DedupeRequest:
    """ How a request meets an earlier job under the same key.

        Attributes:
            key (str): 1 to 200 printable characters.
            mode (str): `pending`: while the earlier job is scheduled, queued, running or retrying, the request
                returns it. `throttle`: for `secs` after the earlier job was accepted, the request returns
                it. `debounce`: the job starts `secs` after the last request under the key; a request
                while it waits replaces its payload, moves its start back and returns it.
            secs (int | None | Unset): The window of `throttle` and `debounce`, 1 to 86,400 seconds; not for `pending`.
     """

    key: str
    mode: str
    secs: int | None | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        key = self.key

        mode = self.mode

        secs: int | None | Unset
        if isinstance(self.secs, Unset):
            secs = UNSET
        else:
            secs = self.secs


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "key": key,
            "mode": mode,
        })
        if secs is not UNSET:
            field_dict["secs"] = secs

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        key = d.pop("key")

        mode = d.pop("mode")

        def _parse_secs(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        secs = _parse_secs(d.pop("secs", UNSET))


        dedupe_request = cls(
            key=key,
            mode=mode,
            secs=secs,
        )

        return dedupe_request


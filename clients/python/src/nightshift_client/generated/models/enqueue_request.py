from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.dedupe_request import DedupeRequest
  from ..models.enqueue_request_payload import EnqueueRequestPayload





T = TypeVar("T", bound="EnqueueRequest")



@_attrs_define
class EnqueueRequest:
    """ 
        Attributes:
            kind (str): A kind of the job catalog (`JobKind` lists those a client may enqueue), e.g.
                `cashflow.project`; its payload is checked against the kind's type
                (`CashflowProjectPayload`).
            concurrency_key (None | str | Unset): At most `concurrency_limit` jobs with this key (per client) run at once,
                across every
                worker. A job waiting for a slot is not an attempt. 1 to 200 printable characters.
            concurrency_limit (int | None | Unset): 1 to 1,000; 1 when absent. Only with `concurrency_key`.
            dedupe (DedupeRequest | None | Unset):
            delay_secs (int | None | Unset): Run no earlier than this many seconds from now (at most a year).
            group (None | str | Unset): Ready jobs of a queue are taken round-robin across groups (per client), so one
                group's
                backlog delays another's job by about one job per busy group. Not with `priority`.
            max_attempts (int | None | Unset): Overrides the kind's attempts (1 to 100).
            payload (EnqueueRequestPayload | Unset): The kind's payload; `{}` when absent.
            priority (int | None | Unset): 0 runs first, 9 last; the kind's default (5 for most) when absent. Within a queue
                a
                ready job never starts after a ready job of a larger number; equal ones run in order.
            rate_key (None | str | Unset): Jobs of the kind with this key (per client) start at most at the kind's rate; one
                over
                it is delayed to its turn, not failed, and the wait is not an attempt. Only for kinds
                whose policy sets a rate.
     """

    kind: str
    concurrency_key: None | str | Unset = UNSET
    concurrency_limit: int | None | Unset = UNSET
    dedupe: DedupeRequest | None | Unset = UNSET
    delay_secs: int | None | Unset = UNSET
    group: None | str | Unset = UNSET
    max_attempts: int | None | Unset = UNSET
    payload: EnqueueRequestPayload | Unset = UNSET
    priority: int | None | Unset = UNSET
    rate_key: None | str | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.dedupe_request import DedupeRequest # noqa: PLC0415
        from ..models.enqueue_request_payload import EnqueueRequestPayload # noqa: PLC0415
        kind = self.kind

        concurrency_key: None | str | Unset
        if isinstance(self.concurrency_key, Unset):
            concurrency_key = UNSET
        else:
            concurrency_key = self.concurrency_key

        concurrency_limit: int | None | Unset
        if isinstance(self.concurrency_limit, Unset):
            concurrency_limit = UNSET
        else:
            concurrency_limit = self.concurrency_limit

        dedupe: dict[str, Any] | None | Unset
        if isinstance(self.dedupe, Unset):
            dedupe = UNSET
        elif isinstance(self.dedupe, DedupeRequest):
            dedupe = self.dedupe.to_dict()
        else:
            dedupe = self.dedupe

        delay_secs: int | None | Unset
        if isinstance(self.delay_secs, Unset):
            delay_secs = UNSET
        else:
            delay_secs = self.delay_secs

        group: None | str | Unset
        if isinstance(self.group, Unset):
            group = UNSET
        else:
            group = self.group

        max_attempts: int | None | Unset
        if isinstance(self.max_attempts, Unset):
            max_attempts = UNSET
        else:
            max_attempts = self.max_attempts

        payload: dict[str, Any] | Unset = UNSET
        if not isinstance(self.payload, Unset):
            payload = self.payload.to_dict()

        priority: int | None | Unset
        if isinstance(self.priority, Unset):
            priority = UNSET
        else:
            priority = self.priority

        rate_key: None | str | Unset
        if isinstance(self.rate_key, Unset):
            rate_key = UNSET
        else:
            rate_key = self.rate_key


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "kind": kind,
        })
        if concurrency_key is not UNSET:
            field_dict["concurrency_key"] = concurrency_key
        if concurrency_limit is not UNSET:
            field_dict["concurrency_limit"] = concurrency_limit
        if dedupe is not UNSET:
            field_dict["dedupe"] = dedupe
        if delay_secs is not UNSET:
            field_dict["delay_secs"] = delay_secs
        if group is not UNSET:
            field_dict["group"] = group
        if max_attempts is not UNSET:
            field_dict["max_attempts"] = max_attempts
        if payload is not UNSET:
            field_dict["payload"] = payload
        if priority is not UNSET:
            field_dict["priority"] = priority
        if rate_key is not UNSET:
            field_dict["rate_key"] = rate_key

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.dedupe_request import DedupeRequest # noqa: PLC0415
        from ..models.enqueue_request_payload import EnqueueRequestPayload # noqa: PLC0415
        d = dict(src_dict)
        kind = d.pop("kind")

        def _parse_concurrency_key(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        concurrency_key = _parse_concurrency_key(d.pop("concurrency_key", UNSET))


        def _parse_concurrency_limit(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        concurrency_limit = _parse_concurrency_limit(d.pop("concurrency_limit", UNSET))


        def _parse_dedupe(data: object) -> DedupeRequest | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                dedupe_type_1 = DedupeRequest.from_dict(data)



                return dedupe_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(DedupeRequest | None | Unset, data)

        dedupe = _parse_dedupe(d.pop("dedupe", UNSET))


        def _parse_delay_secs(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        delay_secs = _parse_delay_secs(d.pop("delay_secs", UNSET))


        def _parse_group(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        group = _parse_group(d.pop("group", UNSET))


        def _parse_max_attempts(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_attempts = _parse_max_attempts(d.pop("max_attempts", UNSET))


        _payload = d.pop("payload", UNSET)
        payload: EnqueueRequestPayload | Unset
        if isinstance(_payload,  Unset):
            payload = UNSET
        else:
            payload = EnqueueRequestPayload.from_dict(_payload)




        def _parse_priority(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        priority = _parse_priority(d.pop("priority", UNSET))


        def _parse_rate_key(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        rate_key = _parse_rate_key(d.pop("rate_key", UNSET))


        enqueue_request = cls(
            kind=kind,
            concurrency_key=concurrency_key,
            concurrency_limit=concurrency_limit,
            dedupe=dedupe,
            delay_secs=delay_secs,
            group=group,
            max_attempts=max_attempts,
            payload=payload,
            priority=priority,
            rate_key=rate_key,
        )

        return enqueue_request


"""The hand-written layer over the generated client (``nightshift_client.generated``, from the
API's OpenAPI document): what generation cannot express.

- the token and URL from the environment (``NIGHTSHIFT_TOKEN``, ``NIGHTSHIFT_URL``);
- an idempotency key on every enqueue and e-mail (a fresh UUID unless given), so a retried
  call never makes a second job;
- 429 and 503 waited out as ``Retry-After`` asks (``_retry``);
- errors raised as :class:`NightshiftError` with the field the server named;
- ``wait(job_id)``, polling the job with back-off until it is final.

``Nightshift`` is synchronous and ``AsyncNightshift`` its asyncio twin; both share the calls
below and differ only in how they send and sleep.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from typing import Any, Callable, Mapping, Optional, TypeVar, Union

import httpx

from ._retry import AsyncRetryTransport, OnRetry, RetryTransport
from .generated import AuthenticatedClient
from .generated.api.batches import create_batches, read_batches
from .generated.api.cashflow import read_cashflow
from .generated.api.emails import send, status_emails
from .generated.api.jobs import enqueue, status_jobs
from .generated.models import CreateBatch, EmailRequest, EmailRequestTemplate, EnqueueRequest, JobKind
from .generated.types import UNSET, Response

T = TypeVar("T")
# A job ends in one of these and never leaves them.
FINAL_STATES = frozenset({"succeeded", "dead", "cancelled"})


class _Auto:
    def __repr__(self) -> str:
        return "AUTO"


# `idempotency_key=AUTO` (the default) sends a fresh UUID; None sends none.
AUTO: Any = _Auto()


class NightshiftError(Exception):
    """An answer the API refused: its status and the error body's code, message and field."""

    def __init__(self, status: int, code: str, message: str, field: Optional[str] = None):
        super().__init__(f"{status} {code}: {message}" + (f" (field {field})" if field else ""))
        self.status, self.code, self.message, self.field = status, code, message, field

    @classmethod
    def from_response(cls, response: Response[Any]) -> "NightshiftError":
        try:
            detail = json.loads(response.content)["error"]
            return cls(int(response.status_code), detail["code"], detail["message"], detail.get("field"))
        except (ValueError, KeyError, TypeError):
            text = response.content[:200].decode("utf-8", "replace")
            return cls(int(response.status_code), "unknown", text)


def _unwrap(response: Response[Any]) -> Any:
    if int(response.status_code) < 400 and response.parsed is not None:
        return response.parsed
    raise NightshiftError.from_response(response)


def _key(given: Optional[str]) -> Optional[str]:
    return str(uuid.uuid4()) if given is AUTO else given


def _enqueue_body(kind: Union[str, JobKind], payload: Any, options: Mapping[str, Any]) -> EnqueueRequest:
    body = {"kind": str(getattr(kind, "value", kind)), **options}
    if payload is not None:
        body["payload"] = payload.to_dict() if hasattr(payload, "to_dict") else dict(payload)
    return EnqueueRequest.from_dict(body)


class _Client:
    def __init__(
        self,
        base_url: Optional[str],
        token: Optional[str],
        timeout: float,
        transport: Union[httpx.BaseTransport, httpx.AsyncBaseTransport],
    ):
        token = token or os.environ.get("NIGHTSHIFT_TOKEN")
        if not token:
            raise ValueError("no token: pass token= or set NIGHTSHIFT_TOKEN")
        base_url = (base_url or os.environ.get("NIGHTSHIFT_URL") or "http://127.0.0.1:8080").rstrip("/")
        #: The generated client, for every route this layer does not wrap.
        self.api = AuthenticatedClient(
            base_url=base_url,
            token=token,
            timeout=httpx.Timeout(timeout),
            httpx_args={"transport": transport},
        )

    # Each call returns what the sync client returns, or an awaitable of it for the async one.
    def _call(self, endpoint: Any, then: Callable[[Any], T], **kwargs: Any) -> Any:
        raise NotImplementedError

    def _poll(self, fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str) -> Any:
        raise NotImplementedError

    def enqueue(
        self,
        kind: Union[str, JobKind],
        payload: Any = None,
        *,
        idempotency_key: Optional[str] = AUTO,
        **options: Any,
    ) -> Any:
        """Enqueues a job and returns its id. ``options`` are POST /v1/jobs's other fields
        (``delay_secs``, ``max_attempts``, ``priority``, ``dedupe``, ``concurrency_key``, ...).
        A replay under the same ``idempotency_key`` returns the first job's id."""
        key = _key(idempotency_key)
        return self._call(
            enqueue,
            lambda accepted: accepted.id,
            body=_enqueue_body(kind, payload, options),
            idempotency_key=UNSET if key is None else key,
        )

    def job(self, job_id: str) -> Any:
        """The job's state, attempts, result or error, and progress."""
        return self._call(status_jobs, lambda s: s, id=job_id)

    def wait(self, job_id: str, timeout: float = 60.0) -> Any:
        """Polls until the job is final (succeeded, dead or cancelled), backing off from 50 ms
        to 1 s; raises TimeoutError if it is not within ``timeout`` seconds."""
        return self._poll(lambda: self.job(job_id), lambda s: str(s.state) in FINAL_STATES, timeout, f"job {job_id}")

    def send_email(
        self,
        template: Union[str, EmailRequestTemplate],
        to: str,
        vars: Optional[Mapping[str, Any]] = None,
        *,
        idempotency_key: Optional[str] = AUTO,
    ) -> Any:
        """Queues a templated e-mail; sent once per idempotency key however often this is called."""
        body = {"template": str(getattr(template, "value", template)), "to": to, "vars": dict(vars or {})}
        key = _key(idempotency_key)
        if key is not None:
            body["idempotency_key"] = key
        return self._call(send, lambda q: q, body=EmailRequest.from_dict(body))

    def email(self, idempotency_key: str) -> Any:
        """The e-mail sent under this key: pending, sent or failed, with the SMTP reply."""
        return self._call(status_emails, lambda e: e, key=idempotency_key)

    def wait_email(self, idempotency_key: str, timeout: float = 60.0) -> Any:
        """Polls until the e-mail is sent or failed, as ``wait`` does for a job. (An e-mail's
        job belongs to the platform, not the caller: its key is the handle.)"""
        return self._poll(
            lambda: self.email(idempotency_key), lambda e: e.state != "pending", timeout, f"e-mail {idempotency_key}"
        )

    def cashflow(self, user_id: int) -> Any:
        """The user's current projection: daily balances, the lowest one, and the shortfall."""
        return self._call(read_cashflow, lambda p: p, id=user_id)

    def create_batch(self, jobs: list, **fields: Any) -> Any:
        """Creates a batch (``on_complete``, ``on_success``, ``description``, ``open``)."""
        return self._call(create_batches, lambda b: b, body=CreateBatch.from_dict({"jobs": jobs, **fields}))

    def batch(self, batch_id: str) -> Any:
        return self._call(read_batches, lambda b: b, id=batch_id)


class Nightshift(_Client):
    """The synchronous client.

    >>> ns = Nightshift()                       # NIGHTSHIFT_URL and NIGHTSHIFT_TOKEN
    >>> job = ns.enqueue("cashflow.project", {"user_id": 1})
    >>> ns.wait(job).state
    'succeeded'
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        timeout: float = 10.0,
        max_retries: int = 5,
        on_retry: Optional[OnRetry] = None,
    ):
        super().__init__(base_url, token, timeout, RetryTransport(httpx.HTTPTransport(), max_retries, on_retry))

    def _call(self, endpoint: Any, then: Callable[[Any], T], **kwargs: Any) -> T:
        return then(_unwrap(endpoint.sync_detailed(client=self.api, **kwargs)))

    def _poll(self, fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str) -> Any:
        deadline, delay = time.monotonic() + timeout, 0.05
        while True:
            status = fetch()
            if done(status):
                return status
            if time.monotonic() + delay > deadline:
                raise TimeoutError(f"{what} is still {status.state} after {timeout} s")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def close(self) -> None:
        self.api.get_httpx_client().close()

    def __enter__(self) -> "Nightshift":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncNightshift(_Client):
    """The asyncio client: the same calls as :class:`Nightshift`, each awaited."""

    def __init__(
        self,
        base_url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        timeout: float = 10.0,
        max_retries: int = 5,
        on_retry: Optional[OnRetry] = None,
    ):
        super().__init__(
            base_url, token, timeout, AsyncRetryTransport(httpx.AsyncHTTPTransport(), max_retries, on_retry)
        )

    async def _call(self, endpoint: Any, then: Callable[[Any], T], **kwargs: Any) -> T:
        return then(_unwrap(await endpoint.asyncio_detailed(client=self.api, **kwargs)))

    async def _poll(self, fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str) -> Any:
        deadline, delay = time.monotonic() + timeout, 0.05
        while True:
            status = await fetch()
            if done(status):
                return status
            if time.monotonic() + delay > deadline:
                raise TimeoutError(f"{what} is still {status.state} after {timeout} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def aclose(self) -> None:
        await self.api.get_async_httpx_client().aclose()

    async def __aenter__(self) -> "AsyncNightshift":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

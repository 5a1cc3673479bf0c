"""httpx transports that wait out 429 and 503 as the server asks (Retry-After) and try again.

Both answers mean the request was not acted on (over the rate, or Redis/PostgreSQL away), so
sending it again is safe; an enqueue also carries its idempotency key, so even a request the
server did act on before failing cannot make a second job.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Callable, Optional

import httpx

RETRIED = (429, 503)
# Without a usable Retry-After: 0.5 s, 1 s, 2 s ... capped here.
MAX_BACKOFF = 30.0

# Called before each wait: (status, seconds to wait, attempt number from 1).
OnRetry = Callable[[int, float, int], None]


def retry_after(response: httpx.Response, attempt: int) -> float:
    """The wait the server asked for, in seconds: Retry-After as seconds or an HTTP date;
    without one, 0.5 s doubling with each attempt."""
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return min(float(value), MAX_BACKOFF)
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, min(when.timestamp() - time.time(), MAX_BACKOFF))
    except (TypeError, ValueError):
        return min(0.5 * 2 ** (attempt - 1), MAX_BACKOFF)


class RetryTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, max_retries: int, on_retry: Optional[OnRetry]):
        self._inner, self._max, self._on_retry = inner, max_retries, on_retry

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            response = self._inner.handle_request(request)
            if response.status_code not in RETRIED or attempt >= self._max:
                return response
            attempt += 1
            wait = retry_after(response, attempt)
            response.close()
            if self._on_retry:
                self._on_retry(response.status_code, wait, attempt)
            time.sleep(wait)

    def close(self) -> None:
        self._inner.close()


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, max_retries: int, on_retry: Optional[OnRetry]):
        self._inner, self._max, self._on_retry = inner, max_retries, on_retry

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            response = await self._inner.handle_async_request(request)
            if response.status_code not in RETRIED or attempt >= self._max:
                return response
            attempt += 1
            wait = retry_after(response, attempt)
            await response.aclose()
            if self._on_retry:
                self._on_retry(response.status_code, wait, attempt)
            await asyncio.sleep(wait)

    async def aclose(self) -> None:
        await self._inner.aclose()

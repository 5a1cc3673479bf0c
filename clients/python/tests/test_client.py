"""The Python client against a running platform (started by tests/it/clients.rs, with demo data
and diagnostic kinds on, and a client rate of 10 requests/s with a burst of 20).

NIGHTSHIFT_URL and NIGHTSHIFT_TOKEN name it; NIGHTSHIFT_SLOW_TOKEN is a second client whose
rate the 429 test spends.
"""

import asyncio
import os
import time
import uuid

import httpx
import pytest

from nightshift_client import AsyncNightshift, JobKind, Nightshift, NightshiftError
from nightshift_client._retry import retry_after
from nightshift_client.models import CashflowProjectPayload


@pytest.fixture
def ns():
    with Nightshift() as client:
        yield client


def test_enqueue_a_typed_job_and_wait_for_its_result(ns):
    job = ns.enqueue(JobKind.CASHFLOW_PROJECT, CashflowProjectPayload(user_id=1, horizon_days=30))
    status = ns.wait(job, timeout=30)
    assert status.state == "succeeded"
    assert status.kind == "cashflow.project"
    projection = ns.cashflow(1)
    assert len(projection.days) == 30
    assert isinstance(projection.lowest_balance, int)


def test_a_replay_under_the_same_idempotency_key_is_the_same_job(ns):
    key = f"py-{uuid.uuid4()}"
    first = ns.enqueue("noop", idempotency_key=key)
    again = ns.enqueue("noop", idempotency_key=key)
    assert first == again
    # Without a key of the caller's, each call gets its own fresh one: two calls, two jobs.
    assert ns.enqueue("noop") != ns.enqueue("noop")


def test_wait_returns_a_dead_job_with_its_error(ns):
    job = ns.enqueue("diag.fail", {"message": "card declined"}, max_attempts=1)
    status = ns.wait(job, timeout=30)
    assert status.state == "dead"
    assert "card declined" in status.error


def test_wait_gives_up_after_its_timeout(ns):
    job = ns.enqueue("diag.sleep", {"ms": 3000})
    with pytest.raises(TimeoutError):
        ns.wait(job, timeout=0.5)


def test_a_422_names_the_field(ns):
    with pytest.raises(NightshiftError) as refused:
        ns.enqueue("cashflow.project", {"user_id": 1, "horizon_days": 0})
    assert refused.value.status == 422
    assert refused.value.field == "payload.horizon_days"
    with pytest.raises(NightshiftError) as unknown:
        ns.enqueue("no.such.kind")
    assert (unknown.value.status, unknown.value.field) == (422, "kind")


def test_a_job_of_another_client_is_not_found(ns):
    with pytest.raises(NightshiftError) as missing:
        ns.job(str(uuid.uuid4()))
    assert missing.value.status == 404


def test_a_batch_calls_back_once_its_jobs_are_done(ns):
    created = ns.create_batch(
        [{"kind": "noop"}, {"kind": "noop"}, {"kind": "diag.effect", "payload": {"key": f"py-{uuid.uuid4()}"}}],
        on_complete={"kind": "noop"},
        description="python client",
    )
    assert len(created.job_ids) == 3
    for job in created.job_ids:
        assert ns.wait(job, timeout=30).state == "succeeded"
    for _ in range(100):
        batch = ns.batch(created.id)
        if batch.state == "finished" and batch.callbacks[0].job_state == "succeeded":
            break
        time.sleep(0.1)
    assert (batch.state, batch.total, batch.succeeded, batch.pending) == ("finished", 3, 3, 0)
    assert [(c.on, c.kind, c.job_state) for c in batch.callbacks] == [("complete", "noop", "succeeded")]


def test_429_is_waited_out_as_retry_after_asks():
    retries = []
    slow = Nightshift(token=os.environ["NIGHTSHIFT_SLOW_TOKEN"], on_retry=lambda *r: retries.append(r))
    # 40 requests against a burst of 20 at 10/s: some are refused, and each is sent again
    # after the server's Retry-After until it is taken.
    ids = {slow.enqueue("noop") for _ in range(40)}
    assert len(ids) == 40
    assert retries, "the rate limit was never reached"
    assert all(status == 429 and wait >= 1.0 for status, wait, _ in retries)
    slow.close()


def test_the_async_client_does_the_same():
    async def run():
        async with AsyncNightshift() as ns:
            jobs = await asyncio.gather(*(ns.enqueue("noop") for _ in range(5)))
            done = await asyncio.gather(*(ns.wait(j, timeout=30) for j in jobs))
            assert [s.state for s in done] == ["succeeded"] * 5
            with pytest.raises(NightshiftError) as refused:
                await ns.enqueue("cashflow.project", {"user_id": 1, "as_of": "1900-01-01"})
            assert refused.value.field == "payload.as_of"

    asyncio.run(run())


def test_no_token_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NIGHTSHIFT_TOKEN")
    with pytest.raises(ValueError, match="NIGHTSHIFT_TOKEN"):
        Nightshift()


@pytest.mark.parametrize(
    "header, attempt, expected",
    [("3", 1, 3.0), ("", 1, 0.5), ("", 3, 2.0), ("soon", 2, 1.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 1, 0.0)],
)
def test_retry_after_reads_seconds_and_dates(header, attempt, expected):
    response = httpx.Response(429, headers={"retry-after": header} if header else {})
    assert retry_after(response, attempt) == expected

// The TypeScript client against a running platform (started by tests/it/clients.rs, with demo
// data and diagnostic kinds on, and a client rate of 10 requests/s with a burst of 20).
// NIGHTSHIFT_URL and NIGHTSHIFT_TOKEN name it; NIGHTSHIFT_SLOW_TOKEN is a second client whose
// rate the 429 test spends.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { Nightshift, NightshiftError, retryAfterMs } from "@nightshift/client";

const ns = new Nightshift();

async function refusal(call: Promise<unknown>): Promise<NightshiftError> {
  try {
    await call;
  } catch (e) {
    assert.ok(e instanceof NightshiftError, `${e}`);
    return e;
  }
  assert.fail("the call was not refused");
}

test("enqueue a typed job and wait for its result", async () => {
  const job = await ns.enqueue("cashflow.project", { user_id: 1, horizon_days: 30 });
  const status = await ns.wait(job, { timeoutMs: 30_000 });
  assert.equal(status.state, "succeeded");
  assert.equal(status.kind, "cashflow.project");
  const projection = await ns.cashflow(1);
  assert.equal(projection.days.length, 30);
  assert.equal(typeof projection.lowest_balance, "number");
});

test("a replay under the same idempotency key is the same job", async () => {
  const idempotencyKey = `ts-${randomUUID()}`;
  const first = await ns.enqueue("noop", {}, { idempotencyKey });
  assert.equal(await ns.enqueue("noop", {}, { idempotencyKey }), first);
  // Each call without a key of the caller's gets a fresh one: two calls, two jobs.
  assert.notEqual(await ns.enqueue("noop"), await ns.enqueue("noop"));
});

test("wait returns a dead job with its error", async () => {
  const job = await ns.enqueue("diag.fail", { message: "card declined" }, { max_attempts: 1 });
  const status = await ns.wait(job, { timeoutMs: 30_000 });
  assert.equal(status.state, "dead");
  assert.match(status.error ?? "", /card declined/);
});

test("wait gives up after its timeout", async () => {
  const job = await ns.enqueue("diag.sleep", { ms: 3000 });
  await assert.rejects(ns.wait(job, { timeoutMs: 500 }), /still/);
});

test("a 422 names the field", async () => {
  const bad = await refusal(ns.enqueue("cashflow.project", { user_id: 1, horizon_days: 0 }));
  assert.equal(bad.status, 422);
  assert.equal(bad.field, "payload.horizon_days");
  const unknown = await refusal(ns.enqueue("no.such.kind"));
  assert.deepEqual([unknown.status, unknown.field], [422, "kind"]);
});

test("a job that is not the caller's is not found", async () => {
  assert.equal((await refusal(ns.job(randomUUID()))).status, 404);
});

test("a batch calls back once its jobs are done", async () => {
  const created = await ns.createBatch({
    jobs: [{ kind: "noop" }, { kind: "noop" }, { kind: "diag.effect", payload: { key: `ts-${randomUUID()}` } }],
    on_complete: { kind: "noop" },
    description: "typescript client",
  });
  assert.equal(created.job_ids.length, 3);
  for (const job of created.job_ids) assert.equal((await ns.wait(job, { timeoutMs: 30_000 })).state, "succeeded");
  let batch = await ns.batch(created.id);
  for (let i = 0; i < 100 && !(batch.state === "finished" && batch.callbacks[0]?.job_state === "succeeded"); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    batch = await ns.batch(created.id);
  }
  assert.deepEqual([batch.state, batch.total, batch.succeeded, batch.pending], ["finished", 3, 3, 0]);
  assert.deepEqual(
    batch.callbacks.map((c) => [c.on, c.kind, c.job_state]),
    [["complete", "noop", "succeeded"]],
  );
});

test("429 is waited out as Retry-After asks", async () => {
  const retries: [number, number][] = [];
  const slow = new Nightshift({
    token: process.env.NIGHTSHIFT_SLOW_TOKEN,
    onRetry: (status, waitMs) => retries.push([status, waitMs]),
  });
  // 40 requests against a burst of 20 at 10/s: some are refused, and each is sent again after
  // the server's Retry-After until it is taken.
  const ids = new Set<string>();
  for (let i = 0; i < 40; i++) ids.add(await slow.enqueue("noop"));
  assert.equal(ids.size, 40);
  assert.ok(retries.length > 0, "the rate limit was never reached");
  for (const [status, waitMs] of retries) assert.ok(status === 429 && waitMs >= 1000, `${status} ${waitMs}`);
});

test("no token is a clear error", () => {
  const saved = process.env.NIGHTSHIFT_TOKEN;
  delete process.env.NIGHTSHIFT_TOKEN;
  try {
    assert.throws(() => new Nightshift(), /NIGHTSHIFT_TOKEN/);
  } finally {
    process.env.NIGHTSHIFT_TOKEN = saved;
  }
});

test("Retry-After is read as seconds or as a date", () => {
  const after = (value: string | null, attempt: number) =>
    retryAfterMs(new Response(null, { status: 429, headers: value === null ? {} : { "retry-after": value } }), attempt);
  assert.equal(after("3", 1), 3000);
  assert.equal(after(null, 1), 500);
  assert.equal(after(null, 3), 2000);
  assert.equal(after("soon", 2), 1000);
  assert.equal(after("Wed, 21 Oct 2015 07:28:00 GMT", 1), 0);
});

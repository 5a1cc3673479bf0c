//! The batch pump: moves batch jobs' final states from each queue's event list to PostgreSQL,
//! where each job counts once and the batch that completes is marked finished in the same
//! transaction; then pushes the finished batches' callbacks. Every worker process runs one;
//! a lock per queue keeps one pump on a queue's events at a time, and everything it does is
//! safe to repeat after a crash.
use std::time::{Duration, Instant};

use nightshift_catalog::Queues;
use nightshift_common::batches;
use nightshift_queue::Queue;
use sqlx::PgPool;

/// Events read per call, and how long a pump may hold a queue's events before another takes
/// them over.
const CHUNK: usize = 5000;
const LOCK: Duration = Duration::from_secs(10);
/// How often it looks: the last job's end to its batch's callback is about this plus a push.
const TICK: Duration = Duration::from_millis(25);
/// Finished batches are looked for at least this often even when no event finished one (a
/// batch sealed through the API, a pump that died between finishing and pushing).
const SWEEP: Duration = Duration::from_secs(1);

pub async fn run(db: PgPool, queues: Queues, owner: String) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut swept = Instant::now() - SWEEP;
    loop {
        tick.tick().await;
        let mut finished = 0;
        for q in queues.iter() {
            match pump(&db, q, &owner).await {
                Ok(n) => finished += n,
                Err(e) => tracing::warn!(queue = q.name(), error = %e, "batch pump failed; retrying"),
            }
        }
        if finished > 0 || swept.elapsed() >= SWEEP {
            swept = Instant::now();
            if let Err(e) = push_callbacks(&db, &queues).await {
                tracing::warn!(error = %e, "pushing batch callbacks failed; retrying");
            }
        }
    }
}

/// Records one queue's waiting events; returns how many batches they finished.
async fn pump(db: &PgPool, q: &Queue, owner: &str) -> anyhow::Result<u64> {
    let mut finished = 0;
    loop {
        let Some(read) = q.batch_events(owner, CHUNK, LOCK).await? else {
            return Ok(finished);
        };
        if read.read == 0 {
            return Ok(finished);
        }
        finished += batches::record(db, &read.events).await?;
        if !q.batch_events_recorded(owner, read.read).await? || read.read < CHUNK {
            return Ok(finished);
        }
    }
}

/// Pushes the callbacks of finished batches, each under an idempotency key and the id chosen
/// when its batch finished: pushed again after a crash, it is the same job.
async fn push_callbacks(db: &PgPool, queues: &Queues) -> anyhow::Result<()> {
    for due in batches::due_callbacks(db, 100).await? {
        for (callback, job_id, which) in &due.jobs {
            let Some(spec) = nightshift_catalog::find(&callback.kind) else {
                // Checked when the batch was made; a kind since removed cannot run.
                tracing::error!(batch = %due.outcome.id, kind = %callback.kind, "batch callback of an unknown kind dropped");
                continue;
            };
            let mut payload = callback.payload.clone();
            if let Some(obj) = payload.as_object_mut() {
                obj.insert("batch".into(), serde_json::to_value(&due.outcome)?);
            }
            let mut job = spec
                .new_job(&payload)
                .idempotency_key(format!("batch:{}:{which}", due.outcome.id))
                .trace_parent(due.traceparent.clone());
            job.id = job_id.to_string();
            queues.for_spec(spec).push(job).await?;
        }
        batches::callbacks_pushed(db, due.outcome.id.parse()?).await?;
    }
    Ok(())
}

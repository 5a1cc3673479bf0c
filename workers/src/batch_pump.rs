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

/// How often jobs recorded in a batch but never pushed are looked for (at most).
const ORPHAN_SWEEP: Duration = Duration::from_secs(60);

pub async fn run(db: PgPool, queues: Queues, owner: String, orphan_age: Duration) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut swept = Instant::now() - SWEEP;
    let orphan_sweep = ORPHAN_SWEEP.min(orphan_age);
    let mut orphans_swept = Instant::now();
    loop {
        tick.tick().await;
        if orphans_swept.elapsed() >= orphan_sweep {
            orphans_swept = Instant::now();
            if let Err(e) = take_back_unpushed(&db, &queues, orphan_age, orphan_sweep).await {
                tracing::warn!(error = %e, "looking for batch jobs never pushed failed; retrying");
            }
        }
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

/// Takes back from their batches the jobs the API recorded but never pushed (it stopped between
/// the two, and its caller had no 202): they will never report, and their batch would wait for
/// them forever. A job counts as never pushed when, `age` after it was recorded, neither the
/// history nor any queue knows it. One worker process a sweep does it (a Redis lock), though
/// taking a job back twice would be harmless: with a 100,000-job batch of the day pending, the
/// read took 130 ms of PostgreSQL. Only jobs recorded in the day before that age are looked at:
/// a sweep finds a job soon after it is `age` old, and older batches are not read again.
async fn take_back_unpushed(db: &PgPool, queues: &Queues, age: Duration, every: Duration) -> anyhow::Result<()> {
    use nightshift_common::job_ids::first_uuid_v7_at;
    let Some(first) = queues.iter().next() else {
        return Ok(());
    };
    let mine: Option<String> = redis::cmd("SET")
        .arg(format!("{}:batch-orphans", first.config().prefix))
        .arg(1)
        .arg("NX")
        .arg("PX")
        .arg(every.as_millis().max(1) as u64)
        .query_async(&mut first.connection())
        .await?;
    if mine.is_none() {
        return Ok(());
    }
    let end = nightshift_queue::clock::now() - age;
    let made = first_uuid_v7_at(end - chrono::TimeDelta::days(1))..first_uuid_v7_at(end);
    let found = batches::unrecorded_jobs(db, made, 1000).await?;
    if found.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for (_, job) in &found {
        for q in queues.iter() {
            pipe.exists(q.job_key(&job.to_string()));
        }
    }
    let known: Vec<bool> = pipe.query_async(&mut first.connection()).await?;
    let per_job = queues.iter().count();
    let mut unpushed: std::collections::BTreeMap<uuid::Uuid, Vec<uuid::Uuid>> = Default::default();
    for ((batch, job), known) in found.iter().zip(known.chunks(per_job)) {
        if !known.contains(&true) {
            unpushed.entry(*batch).or_default().push(*job);
        }
    }
    for (batch, jobs) in unpushed {
        tracing::warn!(
            %batch,
            jobs = jobs.len(),
            "batch jobs recorded but never pushed (the API stopped in between) taken back"
        );
        batches::forget(db, batch, &jobs).await?;
    }
    Ok(())
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
                .idempotency_key(nightshift_catalog::platform_key(format_args!(
                    "batch:{}:{which}",
                    due.outcome.id
                )))
                .trace_parent(due.traceparent.clone());
            job.id = job_id.to_string();
            queues.for_spec(spec).push(job).await?;
        }
        batches::callbacks_pushed(db, due.outcome.id.parse()?).await?;
    }
    Ok(())
}

//! Job history in PostgreSQL. Workers report state changes after Redis committed them; the
//! writer turns them into one upsert per batch so PostgreSQL is never a round trip per job.
use std::{collections::HashSet, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use nightshift_queue::{AttemptReport, JobRecord};
use serde::Serialize;
use sqlx::PgPool;
use tokio::{sync::mpsc, task::JoinHandle};
use uuid::Uuid;

const BATCH: usize = 2000;
/// Reports buffered before the workers feel backpressure: history is a record, never dropped.
pub const CHANNEL_CAPACITY: usize = 50_000;

/// Starts the writer. It ends, after flushing, once every sender is dropped. One writer, on
/// purpose: the machine is CPU-bound at these rates, and parallel upserts were measured
/// slower (20k vs 27k jobs/s) because they starve Redis and the worker of CPU.
pub fn spawn_writer(pool: PgPool) -> (mpsc::Sender<AttemptReport>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    (tx, tokio::spawn(write_loop(pool, rx)))
}

async fn write_loop(pool: PgPool, mut rx: mpsc::Receiver<AttemptReport>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut failures = 0u32;
        while let Err(e) = write_batch(&pool, &batch).await {
            failures += 1;
            tracing::warn!(error = %e, rows = batch.len(), "job history write failed; retrying");
            tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(failures.min(6)))).await;
        }
        batch.clear();
    }
}

fn ts(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_else(Utc::now)
}

/// Writes reports; a job reported twice in one batch is written in two statements, because
/// one upsert may not touch the same row twice.
pub async fn write_batch(pool: &PgPool, reports: &[AttemptReport]) -> Result<(), sqlx::Error> {
    let mut rest: Vec<&AttemptReport> = reports.iter().collect();
    while !rest.is_empty() {
        let mut seen = HashSet::new();
        let (now, later): (Vec<&AttemptReport>, Vec<&AttemptReport>) =
            rest.into_iter().partition(|r| seen.insert(r.id.as_str()));
        upsert(pool, &now).await?;
        rest = later;
    }
    Ok(())
}

/// The queue carries any text; one value that is not JSON would fail its whole batch's
/// `::jsonb` cast on every retry and wedge the history. Such a value is recorded as NULL.
fn json_or_none(id: &str, what: &str, text: &str) -> Option<String> {
    match serde_json::from_str::<serde::de::IgnoredAny>(text) {
        Ok(_) => Some(text.to_string()),
        Err(e) => {
            tracing::warn!(job.id = %id, field = what, error = %e, "not JSON; recorded as null in history");
            None
        }
    }
}

async fn upsert(pool: &PgPool, rows: &[&AttemptReport]) -> Result<(), sqlx::Error> {
    let mut ids = Vec::with_capacity(rows.len());
    let (mut queues, mut kinds, mut payloads, mut states) = (vec![], vec![], vec![], vec![]);
    let (mut attempts, mut maxes, mut created, mut started, mut finished) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut errors, mut results, mut workers) = (vec![], vec![], vec![]);
    for r in rows {
        let Ok(id) = Uuid::parse_str(&r.id) else {
            tracing::warn!(job.id = %r.id, "job id is not a UUID; not recorded in history");
            continue;
        };
        ids.push(id);
        queues.push(r.queue.to_string());
        kinds.push(r.kind.clone());
        payloads.push(r.payload.as_deref().and_then(|p| json_or_none(&r.id, "payload", p)));
        states.push(r.state.as_str().to_string());
        attempts.push(r.attempt as i32);
        maxes.push(r.max_attempts.map(|m| m as i32));
        created.push(r.created_at_ms.map(ts));
        started.push(r.started_at_ms.map(ts));
        finished.push(ts(r.finished_at_ms));
        errors.push(r.error.clone());
        results.push(r.result.as_deref().and_then(|p| json_or_none(&r.id, "result", p)));
        workers.push(r.worker.clone());
    }
    // Reports from different processes can arrive out of order: a later attempt wins.
    sqlx::query(
        r#"
        INSERT INTO job_history AS h (id, queue, kind, payload, state, attempts, max_attempts,
            created_at, started_at, finished_at, error, result, worker, events)
        SELECT u.id, u.queue, u.kind, u.payload::jsonb, u.state, u.attempts, u.max_attempts,
            COALESCE(u.created_at, u.finished_at), u.started_at,
            CASE WHEN u.state IN ('succeeded', 'dead', 'cancelled') THEN u.finished_at END,
            u.error, u.result::jsonb, u.worker,
            CASE WHEN u.state = 'succeeded' AND u.attempts = 1 THEN '[]'::jsonb
                ELSE jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('state', u.state,
                    'attempt', u.attempts, 'at', u.finished_at, 'error', u.error, 'worker', u.worker)))
            END
        FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[],
            $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::text[], $13::text[])
            AS u(id, queue, kind, payload, state, attempts, max_attempts, created_at, started_at,
                 finished_at, error, result, worker)
        ON CONFLICT (id) DO UPDATE SET
            state = EXCLUDED.state,
            attempts = EXCLUDED.attempts,
            max_attempts = COALESCE(EXCLUDED.max_attempts, h.max_attempts),
            payload = COALESCE(h.payload, EXCLUDED.payload),
            started_at = COALESCE(EXCLUDED.started_at, h.started_at),
            finished_at = EXCLUDED.finished_at,
            error = EXCLUDED.error,
            result = EXCLUDED.result,
            worker = EXCLUDED.worker,
            events = h.events || EXCLUDED.events
        WHERE h.attempts <= EXCLUDED.attempts
        "#,
    )
    .bind(&ids)
    .bind(&queues)
    .bind(&kinds)
    .bind(&payloads)
    .bind(&states)
    .bind(&attempts)
    .bind(&maxes)
    .bind(&created)
    .bind(&started)
    .bind(&finished)
    .bind(&errors)
    .bind(&results)
    .bind(&workers)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records an accepted job before the API answers, so the record exists even if Redis later
/// loses it. An idempotent replay finds the row and leaves it alone; so does a fast worker
/// whose report of the first attempt got there first, except that the job's submitter is
/// still recorded (without it the client could not read its own job).
pub async fn record_enqueued(pool: &PgPool, rec: &JobRecord, submitted_by: &str) -> Result<(), sqlx::Error> {
    let id = Uuid::parse_str(&rec.id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    sqlx::query(
        r#"
        INSERT INTO job_history (id, queue, kind, payload, state, attempts, max_attempts, created_at, submitted_by, events)
        VALUES ($1, $2, $3, $4::jsonb, $5, 0, $6, $7, $8,
            jsonb_build_array(jsonb_build_object('state', $5::text, 'attempt', 0, 'at', $7)))
        ON CONFLICT (id) DO UPDATE SET submitted_by = COALESCE(job_history.submitted_by, EXCLUDED.submitted_by)
        "#,
    )
    .bind(id)
    .bind(&rec.queue)
    .bind(&rec.kind)
    .bind(&rec.payload)
    .bind(rec.state.as_str())
    .bind(rec.max_attempts as i32)
    .bind(ts(rec.created_at_ms))
    .bind(submitted_by)
    .execute(pool)
    .await?;
    Ok(())
}

/// Who enqueued a job through the API; `None` for a job the platform made itself (scheduler,
/// fan-outs) or one not on record.
pub async fn submitted_by(pool: &PgPool, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    Ok(
        sqlx::query_scalar::<_, Option<String>>("SELECT submitted_by FROM job_history WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?
            .flatten(),
    )
}

/// What a job was enqueued with: kind, payload, max attempts; `None` if not on record.
pub async fn request_of(
    pool: &PgPool,
    id: &str,
) -> Result<Option<(String, Option<serde_json::Value>, Option<i32>)>, sqlx::Error> {
    let Ok(id) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    sqlx::query_as("SELECT kind, payload, max_attempts FROM job_history WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// A job as the status endpoint shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct JobStatus {
    pub id: String,
    pub queue: String,
    pub kind: String,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// What the handler returned, as JSON.
    pub result: Option<serde_json::Value>,
    #[serde(skip)]
    pub submitted_by: Option<String>,
}

impl JobStatus {
    pub fn from_redis(r: JobRecord) -> Self {
        let opt_ts = |v: Option<i64>| v.map(ts);
        JobStatus {
            result: r.result.as_deref().and_then(|s| serde_json::from_str(s).ok()),
            finished_at: if r.state.is_final() {
                opt_ts(r.finished_at_ms)
            } else {
                None
            },
            started_at: opt_ts(r.started_at_ms),
            created_at: ts(r.created_at_ms),
            id: r.id,
            queue: r.queue,
            kind: r.kind,
            state: r.state.as_str().to_string(),
            attempts: r.attempts as i32,
            max_attempts: Some(r.max_attempts as i32),
            error: r.error,
            submitted_by: None,
        }
    }
}

pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<JobStatus>, sqlx::Error> {
    sqlx::query_as::<_, JobStatus>(
        "SELECT id::text AS id, queue, kind, state, attempts, max_attempts, created_at, started_at, finished_at,
                error, result, submitted_by
         FROM job_history WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

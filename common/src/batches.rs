// Over 400 lines: every statement on the batch tables, so the counting rule (each job once, one finisher) is in one file.
//! Batches in PostgreSQL: jobs counted together, and the moment all have finished. The queue
//! reports each batch job's final state at least once (`Queue::batch_events`); here each job
//! counts once (`batch_jobs.state` is set only while NULL), and the one transaction that takes
//! `pending` to 0 on a sealed batch marks it finished and picks its callbacks' ids. Pushing the
//! callbacks is the worker's (`due_callbacks`, `callbacks_pushed`), under idempotency keys, so
//! a crash between the two pushes them again as the same jobs.
use chrono::{DateTime, Utc};
use nightshift_queue::{BatchEvent, BatchOutcome, JobState};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

/// The job a batch enqueues when it finishes: a kind and its payload, to which the batch's
/// outcome is added under `batch`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Callback {
    pub kind: String,
    #[serde(default = "empty_object")]
    pub payload: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

#[derive(Debug, Clone)]
pub struct NewBatch {
    pub id: Uuid,
    pub submitted_by: Option<String>,
    pub submitted_user: Option<i64>,
    pub description: Option<String>,
    pub on_complete: Option<Callback>,
    pub on_success: Option<Callback>,
    /// Sealed at creation: it finishes once these jobs have.
    pub sealed: bool,
    /// The W3C traceparent of the request that made it, when traced.
    pub traceparent: Option<String>,
}

/// A batch as read back.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Batch {
    pub id: Uuid,
    #[serde(skip)]
    pub submitted_by: Option<String>,
    #[serde(skip)]
    pub submitted_user: Option<i64>,
    pub description: Option<String>,
    #[sqlx(json(nullable))]
    pub on_complete: Option<Callback>,
    #[sqlx(json(nullable))]
    pub on_success: Option<Callback>,
    pub total: i32,
    pub pending: i32,
    pub succeeded: i32,
    pub dead: i32,
    pub cancelled: i32,
    pub created_at: DateTime<Utc>,
    pub sealed_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub complete_job: Option<Uuid>,
    pub success_job: Option<Uuid>,
}

impl Batch {
    /// `open`, `sealed` (waiting for its jobs) or `finished`.
    pub fn state(&self) -> &'static str {
        match (self.sealed_at, self.finished_at) {
            (_, Some(_)) => "finished",
            (Some(_), None) => "sealed",
            (None, None) => "open",
        }
    }
}

const COLUMNS: &str = "id, submitted_by, submitted_user, description, on_complete, on_success, total, pending, \
     succeeded, dead, cancelled, created_at, sealed_at, finished_at, complete_job, success_job";

/// Why jobs could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("no such batch")]
    NotFound,
    #[error("the batch is sealed")]
    Sealed,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{0} open batches already (NIGHTSHIFT_MAX_OPEN_BATCHES): seal one first")]
    TooManyOpen(u32),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Records a new batch with its first jobs, before they are pushed (so none can finish
/// uncounted). Making it again (a job that makes a batch, retried) changes nothing but adds
/// jobs it did not have. With `open_cap`, an open batch is refused when its caller already holds that many. Callers
/// are counted one at a time (a transaction lock on the caller), so two concurrent requests
/// cannot both take the last place.
pub async fn create(db: &PgPool, b: &NewBatch, jobs: &[Uuid], open_cap: Option<u32>) -> Result<(), CreateError> {
    let mut tx = db.begin().await?;
    if let (Some(cap), false, Some(by)) = (open_cap, b.sealed, &b.submitted_by) {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('nightshift.open_batches:' || $1, 0))")
            .bind(by)
            .execute(&mut *tx)
            .await?;
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM batches
             WHERE submitted_by = $1 AND submitted_user IS NOT DISTINCT FROM $2 AND sealed_at IS NULL",
        )
        .bind(by)
        .bind(b.submitted_user)
        .fetch_one(&mut *tx)
        .await?;
        if open >= i64::from(cap) {
            return Err(CreateError::TooManyOpen(cap));
        }
    }
    sqlx::query(
        "INSERT INTO batches (id, submitted_by, submitted_user, description, on_complete, on_success, sealed_at,
                              traceparent)
         VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN now() END, $8)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(b.id)
    .bind(&b.submitted_by)
    .bind(b.submitted_user)
    .bind(&b.description)
    .bind(b.on_complete.as_ref().map(sqlx::types::Json))
    .bind(b.on_success.as_ref().map(sqlx::types::Json))
    .bind(b.sealed)
    .bind(&b.traceparent)
    .execute(&mut *tx)
    .await?;
    insert_jobs(&mut tx, b.id, jobs).await?;
    // A sealed batch of no jobs is finished at once.
    finish(&mut tx, &[b.id]).await?;
    Ok(tx.commit().await?)
}

/// Adds jobs to an open batch, before they are pushed.
pub async fn add(db: &PgPool, id: Uuid, jobs: &[Uuid]) -> Result<(), AddError> {
    let mut tx = db.begin().await?;
    let sealed: Option<Option<DateTime<Utc>>> =
        sqlx::query_scalar("SELECT sealed_at FROM batches WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    match sealed {
        None => return Err(AddError::NotFound),
        Some(Some(_)) => return Err(AddError::Sealed),
        Some(None) => {}
    }
    insert_jobs(&mut tx, id, jobs).await?;
    tx.commit().await?;
    Ok(())
}

/// Takes back jobs recorded by `create` or `add` whose push failed: they will never report.
pub async fn forget(db: &PgPool, id: Uuid, jobs: &[Uuid]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let gone = sqlx::query("DELETE FROM batch_jobs WHERE batch_id = $1 AND job_id = ANY($2) AND state IS NULL")
        .bind(id)
        .bind(jobs)
        .execute(&mut *tx)
        .await?
        .rows_affected() as i32;
    sqlx::query("UPDATE batches SET total = total - $2, pending = pending - $2 WHERE id = $1")
        .bind(id)
        .bind(gone)
        .execute(&mut *tx)
        .await?;
    finish(&mut tx, &[id]).await?;
    tx.commit().await
}

/// Jobs of unfinished batches, recorded in `made` (UUIDv7 bounds: ids sort by creation), that
/// have not reported and that no history row knows: pushed and not yet run, or never pushed at
/// all. Redis tells the two apart. Only UUIDv7 ids, whose order is their age: the nightly run's
/// pages have ids drawn from their users, which say nothing of when they were made.
pub async fn unrecorded_jobs(
    db: &PgPool,
    made: std::ops::Range<Uuid>,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT bj.batch_id, bj.job_id FROM batches b JOIN batch_jobs bj ON bj.batch_id = b.id
         WHERE b.finished_at IS NULL AND bj.state IS NULL AND bj.job_id >= $1 AND bj.job_id < $2
           AND substr(bj.job_id::text, 15, 1) = '7'
           AND NOT EXISTS (SELECT 1 FROM job_history h WHERE h.id = bj.job_id)
         ORDER BY bj.job_id LIMIT $3",
    )
    .bind(made.start)
    .bind(made.end)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Seals an open batch: no job may be added, and it finishes once its jobs have. `false` if
/// there is no such batch; sealing twice is harmless.
pub async fn seal(db: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let found = sqlx::query("UPDATE batches SET sealed_at = COALESCE(sealed_at, now()) WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    finish(&mut tx, &[id]).await?;
    tx.commit().await?;
    Ok(found)
}

/// Adds jobs to a batch's rows and counts; a job it already has (added again by a retry) is
/// not counted twice.
async fn insert_jobs(tx: &mut sqlx::PgConnection, id: Uuid, jobs: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH added AS (
             INSERT INTO batch_jobs (batch_id, job_id) SELECT $1, unnest($2::uuid[])
             ON CONFLICT DO NOTHING RETURNING 1
         )
         UPDATE batches SET total = total + (SELECT count(*) FROM added),
                            pending = pending + (SELECT count(*) FROM added)
         WHERE id = $1",
    )
    .bind(id)
    .bind(jobs)
    .execute(tx)
    .await?;
    Ok(())
}

/// Counts reported final states, each job once, and finishes the batches they complete.
/// Returns how many batches finished.
pub async fn record(db: &PgPool, events: &[BatchEvent]) -> Result<u64, sqlx::Error> {
    let (mut batches, mut jobs, mut states) = (Vec::new(), Vec::new(), Vec::new());
    for e in events {
        // An id that is not a UUID was not made by the API: nothing of ours to count.
        let (Ok(b), Ok(j)) = (Uuid::parse_str(&e.batch), Uuid::parse_str(&e.job)) else {
            continue;
        };
        if matches!(e.state, JobState::Succeeded | JobState::Dead | JobState::Cancelled) {
            batches.push(b);
            jobs.push(j);
            states.push(e.state.as_str());
        }
    }
    if batches.is_empty() {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let mut touched: Vec<Uuid> = batches.clone();
    touched.sort();
    touched.dedup();
    // Locked in id order: pumps of two queues reporting on the same batches cannot deadlock.
    sqlx::query("SELECT 1 FROM batches WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(&touched)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "WITH ev AS (
             SELECT DISTINCT ON (b, j) b, j, s FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS e (b, j, s)
         ), counted AS (
             UPDATE batch_jobs bj SET state = ev.s FROM ev
             WHERE bj.batch_id = ev.b AND bj.job_id = ev.j AND bj.state IS NULL
             RETURNING bj.batch_id, bj.job_id, bj.state
         ), per_batch AS (
             SELECT batch_id, count(*)::int AS n,
                    count(*) FILTER (WHERE state = 'succeeded')::int AS s,
                    count(*) FILTER (WHERE state = 'dead')::int AS d,
                    count(*) FILTER (WHERE state = 'cancelled')::int AS c,
                    coalesce(array_agg(job_id) FILTER (WHERE state = 'dead'), '{}') AS dead_ids
             FROM counted GROUP BY batch_id
         )
         UPDATE batches SET pending = pending - p.n, succeeded = succeeded + p.s, dead = dead + p.d,
                            cancelled = cancelled + p.c, dead_ids = (batches.dead_ids || p.dead_ids)[1:100]
         FROM per_batch p WHERE batches.id = p.batch_id",
    )
    .bind(&batches)
    .bind(&jobs)
    .bind(&states)
    .execute(&mut *tx)
    .await?;
    let finished = finish(&mut tx, &touched).await?;
    tx.commit().await?;
    Ok(finished)
}

/// Marks finished the sealed batches among `ids` with nothing pending, choosing their
/// callbacks' ids. Only the transaction that does this for a batch sees it happen.
async fn finish(tx: &mut sqlx::PgConnection, ids: &[Uuid]) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE batches SET finished_at = now(),
                complete_job = CASE WHEN on_complete IS NOT NULL THEN gen_random_uuid() END,
                success_job = CASE WHEN on_success IS NOT NULL AND dead = 0 AND cancelled = 0
                                   THEN gen_random_uuid() END,
                callbacks_pushed_at = CASE WHEN on_complete IS NULL
                                            AND (on_success IS NULL OR dead + cancelled > 0) THEN now() END
         WHERE id = ANY($1) AND pending = 0 AND sealed_at IS NOT NULL AND finished_at IS NULL",
    )
    .bind(ids)
    .execute(tx)
    .await?
    .rows_affected())
}

/// A finished batch whose callbacks are not yet known to be in their queues.
#[derive(Debug, Clone)]
pub struct DueCallbacks {
    pub outcome: BatchOutcome,
    /// (callback, the id its job must have, `complete` or `success`).
    pub jobs: Vec<(Callback, Uuid, &'static str)>,
    /// The batch's creator's traceparent: the callbacks' runs link to it.
    pub traceparent: Option<String>,
}

/// Finished batches whose callbacks still have to be pushed, oldest first.
pub async fn due_callbacks(db: &PgPool, limit: i64) -> Result<Vec<DueCallbacks>, sqlx::Error> {
    type Row = (
        Uuid,
        i32,
        i32,
        i32,
        i32,
        Vec<Uuid>,
        Option<sqlx::types::Json<Callback>>,
        Option<Uuid>,
        Option<sqlx::types::Json<Callback>>,
        Option<Uuid>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, total, succeeded, dead, cancelled, dead_ids, on_complete, complete_job, on_success, success_job,
                traceparent
         FROM batches WHERE finished_at IS NOT NULL AND callbacks_pushed_at IS NULL
         ORDER BY finished_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                total,
                succeeded,
                dead,
                cancelled,
                dead_ids,
                complete,
                complete_job,
                success,
                success_job,
                traceparent,
            )| {
                let jobs = [(complete, complete_job, "complete"), (success, success_job, "success")]
                    .into_iter()
                    .filter_map(|(cb, job, which)| Some((cb?.0, job?, which)))
                    .collect();
                DueCallbacks {
                    outcome: BatchOutcome {
                        id: id.to_string(),
                        total,
                        succeeded,
                        dead,
                        cancelled,
                        dead_ids: dead_ids.iter().map(Uuid::to_string).collect(),
                    },
                    jobs,
                    traceparent,
                }
            },
        )
        .collect())
}

/// Records that a batch's callbacks are in their queues.
pub async fn callbacks_pushed(db: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE batches SET callbacks_pushed_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn get(db: &PgPool, id: Uuid) -> Result<Option<Batch>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM batches WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Filters of [`list`]; the owner ones confine it to a client's batches.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub submitted_by: Option<String>,
    pub submitted_user: Option<i64>,
    /// open, sealed or finished.
    pub state: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// Batches, newest first.
pub async fn list(db: &PgPool, f: &ListFilter) -> Result<Vec<Batch>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM batches
         WHERE ($1::text IS NULL OR submitted_by = $1)
           AND ($2::bigint IS NULL OR submitted_user = $2)
           AND ($3::text IS NULL
                OR ($3 = 'finished' AND finished_at IS NOT NULL)
                OR ($3 = 'sealed' AND sealed_at IS NOT NULL AND finished_at IS NULL)
                OR ($3 = 'open' AND sealed_at IS NULL))
           AND ($4::timestamptz IS NULL OR created_at >= $4)
           AND ($5::timestamptz IS NULL OR created_at < $5)
         ORDER BY created_at DESC LIMIT $6"
    ))
    .bind(&f.submitted_by)
    .bind(f.submitted_user)
    .bind(&f.state)
    .bind(f.since)
    .bind(f.until)
    .bind(f.limit.clamp(1, 500))
    .fetch_all(db)
    .await
}

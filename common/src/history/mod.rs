//! Job history in PostgreSQL. Workers report state changes after Redis committed them; the
//! writer turns them into one upsert per batch so PostgreSQL is never a round trip per job.
//! The API records each job it accepts before answering (requests arriving together share one
//! statement: `crate::group`), and reads history back.
use chrono::{DateTime, TimeZone, Utc};
use nightshift_queue::JobRecord;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

pub mod partitions;
mod queries;
mod sanitize;
#[cfg(test)]
pub(crate) mod test_db;
mod writer;

pub use queries::{Request, find, queues_of_keys, record_operator_state, record_progress, requests_of, submitter};
pub use writer::{CHANNEL_CAPACITY, spawn_writer, write_batch};

use sanitize::{json_or_none, safe_text};

fn ts(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_else(Utc::now)
}

/// A job accepted through the API and who asked for it: the token's subject, and the user of
/// a user-confined token (`None` for service tokens).
#[derive(Debug, Clone)]
pub struct Submitted {
    pub record: JobRecord,
    pub by: String,
    pub user: Option<i64>,
}

/// Records jobs accepted through the API, in one statement. A job already on record (a reused
/// idempotency key) keeps its row; only a missing submitter or key is filled in. A job named
/// twice is recorded once, as first named. Its events start empty: `created_at` says when it
/// was queued, and building that event as JSON was a quarter of this statement's cost.
pub async fn record_enqueued<'a>(
    pool: &PgPool,
    jobs: impl IntoIterator<Item = &'a Submitted>,
) -> Result<(), sqlx::Error> {
    let mut seen = std::collections::HashSet::new();
    let jobs: Vec<&Submitted> = jobs.into_iter().filter(|j| seen.insert(j.record.id.as_str())).collect();
    if jobs.is_empty() {
        return Ok(());
    }
    let n = jobs.len();
    let mut ids = Vec::with_capacity(n);
    let (mut queues, mut kinds, mut payloads, mut states) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut max_attempts, mut created, mut keys) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut by, mut users) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for Submitted {
        record: rec,
        by: who,
        user,
    } in jobs
    {
        ids.push(Uuid::parse_str(&rec.id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?);
        queues.push(safe_text(&rec.id, "queue", &rec.queue).into_owned());
        kinds.push(safe_text(&rec.id, "kind", &rec.kind).into_owned());
        payloads.push(json_or_none(&rec.id, "payload", &rec.payload).map(|p| p.into_owned()));
        states.push(rec.state.as_str());
        max_attempts.push(rec.max_attempts as i32);
        created.push(ts(rec.created_at_ms));
        keys.push(
            rec.idempotency_key
                .as_deref()
                .map(|k| safe_text(&rec.id, "idempotency_key", k).into_owned()),
        );
        by.push(safe_text(&rec.id, "submitted_by", who).into_owned());
        users.push(*user);
    }
    sqlx::query(
        r#"
        INSERT INTO job_history (id, queue, kind, payload, state, attempts, max_attempts, created_at, submitted_by,
            submitted_user, idempotency_key, events)
        SELECT u.id, u.queue, u.kind, u.payload::jsonb, u.state, 0, u.max_attempts, u.created_at, u.by, u.usr, u.key,
            '[]'::jsonb
        FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::timestamptz[],
                    $8::text[], $9::text[], $10::bigint[])
            AS u (id, queue, kind, payload, state, max_attempts, created_at, key, by, usr)
        ON CONFLICT (id) DO UPDATE SET
            submitted_by = COALESCE(job_history.submitted_by, EXCLUDED.submitted_by),
            submitted_user = COALESCE(job_history.submitted_user, EXCLUDED.submitted_user),
            idempotency_key = COALESCE(job_history.idempotency_key, EXCLUDED.idempotency_key)
        "#,
    )
    .bind(&ids)
    .bind(&queues)
    .bind(&kinds)
    .bind(&payloads)
    .bind(&states)
    .bind(&max_attempts)
    .bind(&created)
    .bind(&keys)
    .bind(&by)
    .bind(&users)
    .execute(pool)
    .await?;
    Ok(())
}

impl crate::group::Rows for Submitted {
    fn write<'a>(pool: &'a PgPool, rows: Vec<&'a Self>) -> futures::future::BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(record_enqueued(pool, rows))
    }
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
    /// What the handler last reported of how far it is: Redis's while it holds the job, then
    /// the history's.
    #[sqlx(skip)]
    pub progress: Option<JobProgress>,
}

/// How far a job is, as its handler reported it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobProgress {
    /// 0 to 100.
    pub percent: u8,
    /// What it is doing, at most 200 characters.
    pub message: String,
    pub at: DateTime<Utc>,
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
            progress: r.progress.map(|p| JobProgress {
                percent: p.percent,
                message: p.message,
                at: ts(p.at_ms),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{test_db::TestDb, *};
    use serde_json::json;

    fn submitted(record: &JobRecord, by: &str) -> Submitted {
        Submitted {
            record: record.clone(),
            by: by.into(),
            user: None,
        }
    }

    #[tokio::test]
    async fn record_enqueued_makes_nul_and_non_json_safe() {
        let db = TestDb::create().await;
        let pool = db.pool().await;
        let now = Utc::now().timestamp_millis();
        let record = |payload: &str| {
            let job = nightshift_queue::NewJob::new("k\0", payload).max_attempts(3);
            JobRecord::pushed(&Uuid::new_v4().to_string(), "default\0", &job, now)
        };
        let nul = record(r#"{"a": "\u0000"}"#);
        let not_json = record("{oops");
        record_enqueued(&pool, &[submitted(&nul, "client\0")]).await.unwrap();
        record_enqueued(&pool, &[submitted(&not_json, "client")]).await.unwrap();

        let (queue, kind, payload, submitted_by): (String, String, serde_json::Value, String) =
            sqlx::query_as("SELECT queue, kind, payload, submitted_by FROM job_history WHERE id = $1::uuid")
                .bind(&nul.id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(queue, "default\u{FFFD}");
        assert_eq!(kind, "k\u{FFFD}");
        assert_eq!(payload, json!({"a": "\u{FFFD}"}));
        assert_eq!(submitted_by, "client\u{FFFD}");
        let payload: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT payload FROM job_history WHERE id = $1::uuid")
                .bind(&not_json.id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(payload, None);
    }
}

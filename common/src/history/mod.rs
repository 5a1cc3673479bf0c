//! Job history in PostgreSQL. Workers report state changes after Redis committed them; the
//! writer turns them into one upsert per batch so PostgreSQL is never a round trip per job.
//! The API records each job it accepts before answering, and reads history back.
use chrono::{DateTime, TimeZone, Utc};
use nightshift_queue::JobRecord;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

mod queries;
mod sanitize;
#[cfg(test)]
mod test_db;
mod writer;

pub use queries::{find, queue_of_key, request_of, submitter};
pub use writer::{CHANNEL_CAPACITY, spawn_writer, write_batch};

use sanitize::{json_or_none, safe_text};

fn ts(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_else(Utc::now)
}

/// Records an accepted job before the API answers, so the record exists even if Redis later
/// loses it. An idempotent replay finds the row and leaves it alone; so does a fast worker
/// whose report of the first attempt got there first, except that the job's submitter is
/// still recorded (without it the client could not read its own job). The API refuses NUL
/// and malformed JSON already; the record is made safe all the same, since it must not fail.
/// `submitted_user` is the user of a user-confined token (`None` for service tokens).
pub async fn record_enqueued(
    pool: &PgPool,
    rec: &JobRecord,
    submitted_by: &str,
    submitted_user: Option<i64>,
) -> Result<(), sqlx::Error> {
    let id = Uuid::parse_str(&rec.id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let queue = safe_text(&rec.id, "queue", &rec.queue);
    let kind = safe_text(&rec.id, "kind", &rec.kind);
    let payload = json_or_none(&rec.id, "payload", &rec.payload);
    let submitted_by = safe_text(&rec.id, "submitted_by", submitted_by);
    let key = rec
        .idempotency_key
        .as_deref()
        .map(|k| safe_text(&rec.id, "idempotency_key", k));
    sqlx::query(
        r#"
        INSERT INTO job_history (id, queue, kind, payload, state, attempts, max_attempts, created_at, submitted_by,
            submitted_user, idempotency_key, events)
        VALUES ($1, $2, $3, $4::jsonb, $5, 0, $6, $7, $8, $9, $10,
            jsonb_build_array(jsonb_build_object('state', $5::text, 'attempt', 0, 'at', $7)))
        ON CONFLICT (id) DO UPDATE SET
            submitted_by = COALESCE(job_history.submitted_by, EXCLUDED.submitted_by),
            submitted_user = COALESCE(job_history.submitted_user, EXCLUDED.submitted_user),
            idempotency_key = COALESCE(job_history.idempotency_key, EXCLUDED.idempotency_key)
        "#,
    )
    .bind(id)
    .bind(&queue)
    .bind(&kind)
    .bind(&payload)
    .bind(rec.state.as_str())
    .bind(rec.max_attempts as i32)
    .bind(ts(rec.created_at_ms))
    .bind(&submitted_by)
    .bind(submitted_user)
    .bind(key.as_deref())
    .execute(pool)
    .await?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::{test_db::TestDb, *};
    use nightshift_queue::JobState;
    use serde_json::json;

    #[tokio::test]
    async fn record_enqueued_makes_nul_and_non_json_safe() {
        let db = TestDb::create().await;
        let pool = db.pool().await;
        let now = Utc::now().timestamp_millis();
        let record = |payload: &str| JobRecord {
            id: Uuid::new_v4().to_string(),
            queue: "default\0".into(),
            kind: "k\0".into(),
            payload: payload.into(),
            state: JobState::Queued,
            attempts: 0,
            max_attempts: 3,
            created_at_ms: now,
            run_at_ms: None,
            started_at_ms: None,
            finished_at_ms: None,
            error: None,
            result: None,
            worker: None,
            idempotency_key: None,
        };
        let nul = record(r#"{"a": "\u0000"}"#);
        let not_json = record("{oops");
        record_enqueued(&pool, &nul, "client\0", None).await.unwrap();
        record_enqueued(&pool, &not_json, "client", None).await.unwrap();

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

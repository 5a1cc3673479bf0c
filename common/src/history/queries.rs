//! Reads of job history: a job's status, its submitter, what it was enqueued with, and the
//! queue behind an idempotency key.
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::JobStatus;

/// Who enqueued a job through the API: the token's subject (`None` for a job the platform
/// made itself) and its user, if the token was confined to one; `None` if not on record.
pub async fn submitter(pool: &PgPool, id: Uuid) -> Result<Option<(Option<String>, Option<i64>)>, sqlx::Error> {
    sqlx::query_as("SELECT submitted_by, submitted_user FROM job_history WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The queue of the newest job recorded under a (caller-namespaced) idempotency key since
/// `since`, if any.
pub async fn queue_of_key(pool: &PgPool, key: &str, since: DateTime<Utc>) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT queue FROM job_history WHERE idempotency_key = $1 AND created_at >= $2 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(key)
    .bind(since)
    .fetch_optional(pool)
    .await
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

//! Reads of job history: a job's status, its submitter, what jobs were enqueued with, and the
//! queues behind idempotency keys.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use nightshift_queue::JobState;
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

/// The queue of the newest job recorded under each of these (caller-namespaced) idempotency
/// keys since `since`; keys not on record are absent.
pub async fn queues_of_keys(
    pool: &PgPool,
    keys: &[&str],
    since: DateTime<Utc>,
) -> Result<HashMap<String, String>, sqlx::Error> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT ON (idempotency_key) idempotency_key, queue FROM job_history
         WHERE idempotency_key = ANY($1) AND created_at >= $2 AND id >= $3
         ORDER BY idempotency_key, created_at DESC",
    )
    .bind(keys)
    .bind(since)
    // The id bound reads only the partitions of the days since `since` (a minute early: the
    // id and `created_at` are taken at nearly the same instant).
    .bind(crate::job_ids::first_uuid_v7_at(since - chrono::Duration::minutes(1)))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// What a job was enqueued with: kind, payload, max attempts.
pub type Request = (String, Option<serde_json::Value>, Option<i32>);

/// What each of these jobs was enqueued with, by id; jobs not on record are absent.
pub async fn requests_of(pool: &PgPool, ids: &[&str]) -> Result<HashMap<String, Request>, sqlx::Error> {
    let ids: Vec<Uuid> = ids.iter().filter_map(|id| Uuid::parse_str(id).ok()).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, String, Option<serde_json::Value>, Option<i32>)> =
        sqlx::query_as("SELECT id, kind, payload, max_attempts FROM job_history WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, kind, payload, max)| (id.to_string(), (kind, payload, max)))
        .collect())
}

pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<JobStatus>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        status: JobStatus,
        progress: Option<i16>,
        progress_message: Option<String>,
        progress_at: Option<DateTime<Utc>>,
    }
    let row = sqlx::query_as::<_, Row>(
        "SELECT id::text AS id, queue, kind, state, attempts, max_attempts, created_at, started_at, finished_at,
                error, result, submitted_by, progress, progress_message, progress_at
         FROM job_history WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| {
        let mut status = r.status;
        status.progress = match (r.progress, r.progress_at) {
            (Some(p), Some(at)) => Some(super::JobProgress {
                percent: p.clamp(0, 100) as u8,
                message: r.progress_message.unwrap_or_default(),
                at,
            }),
            _ => None,
        };
        status
    }))
}

/// Keeps a running job's last reported progress with its history.
/// An operator's cancel or retry of jobs no worker holds, which no worker reports: the
/// history is where a job's state outlives Redis (its status once Redis let it go, and the
/// re-derivation after a Redis loss, which would otherwise run a cancelled job again or skip a
/// retried dead one). A final state gets its finish time; another clears it.
pub async fn record_operator_state(pool: &PgPool, ids: &[Uuid], state: JobState) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE job_history SET state = $2, finished_at = CASE WHEN $3 THEN now() END WHERE id = ANY($1)")
        .bind(ids)
        .bind(state.as_str())
        .bind(state.is_final())
        .execute(pool)
        .await?;
    Ok(())
}

/// Keeps jobs' last progress reports in one statement: (id, percent, message, when) each. A
/// report older than the one on record (from a batch written late) changes nothing.
pub async fn record_progress(pool: &PgPool, reports: &[(Uuid, u8, String, DateTime<Utc>)]) -> Result<(), sqlx::Error> {
    let mut ids = Vec::with_capacity(reports.len());
    let mut percents = Vec::with_capacity(reports.len());
    let mut messages = Vec::with_capacity(reports.len());
    let mut ats = Vec::with_capacity(reports.len());
    for (id, percent, message, at) in reports {
        ids.push(*id);
        percents.push(i16::from((*percent).min(100)));
        // The one value PostgreSQL's text refuses: one such message must not fail the batch.
        messages.push(message.replace('\0', ""));
        ats.push(*at);
    }
    sqlx::query(
        "UPDATE job_history h SET progress = r.percent, progress_message = r.message, progress_at = r.at
         FROM unnest($1::uuid[], $2::int2[], $3::text[], $4::timestamptz[]) AS r(id, percent, message, at)
         WHERE h.id = r.id AND (h.progress_at IS NULL OR h.progress_at <= r.at)",
    )
    .bind(ids)
    .bind(percents)
    .bind(messages)
    .bind(ats)
    .execute(pool)
    .await?;
    Ok(())
}

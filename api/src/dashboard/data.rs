//! What the dashboard's overview and list pages show, read from where it lives: live states from
//! Redis, charts and latencies from PostgreSQL (over ranges of the UUIDv7 primary key), schedule
//! misfires and backups. Searching jobs is `search`.
use chrono::{DateTime, Duration, Utc};
use nightshift_common::job_ids::first_uuid_v7_at;
use nightshift_queue::Counts;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::AppState;

pub const PAGE: i64 = 50;

#[derive(Debug, Serialize)]
pub struct QueueRow {
    pub name: String,
    pub counts: Option<Counts>,
}

/// One point per minute of the last hour.
#[derive(Debug, Serialize, Default)]
pub struct Series {
    /// Minute starts, milliseconds since the epoch.
    pub minutes: Vec<i64>,
    pub succeeded: Vec<i64>,
    pub dead: Vec<i64>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Latency {
    pub queue: String,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub jobs: i64,
}

#[derive(Debug, Serialize)]
pub struct Overview {
    pub queues: Vec<QueueRow>,
    pub series: Series,
    pub latency: Vec<Latency>,
    pub at: DateTime<Utc>,
}

/// Counts per queue from Redis; a queue Redis cannot answer for shows no counts.
pub async fn queue_rows(state: &AppState) -> Vec<QueueRow> {
    let mut rows = Vec::new();
    for q in state.queues.iter() {
        let counts = match q.counts().await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(queue = q.name(), error = %e, "queue counts unavailable");
                None
            }
        };
        rows.push(QueueRow {
            name: q.name().to_string(),
            counts,
        });
    }
    rows
}

pub async fn overview(state: &AppState) -> Result<Overview, sqlx::Error> {
    let now = nightshift_queue::clock::now();
    let since = now - Duration::hours(1);
    let floor = first_uuid_v7_at(since - Duration::minutes(5));
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        r#"
        SELECT (extract(epoch FROM date_trunc('minute', finished_at)) * 1000)::bigint,
               count(*) FILTER (WHERE state = 'succeeded'),
               count(*) FILTER (WHERE state = 'dead')
        FROM job_history
        WHERE id >= $1 AND finished_at >= $2
        GROUP BY 1 ORDER BY 1
        "#,
    )
    .bind(floor)
    .bind(since)
    .fetch_all(&state.db)
    .await?;
    // Every minute of the hour, zeros included, so the chart's x axis is time.
    let first = since.timestamp() / 60 * 60_000;
    let mut series = Series::default();
    for i in 0..=60 {
        let minute = first + i * 60_000;
        let (ok, dead) = rows.iter().find(|r| r.0 == minute).map_or((0, 0), |r| (r.1, r.2));
        series.minutes.push(minute);
        series.succeeded.push(ok);
        series.dead.push(dead);
    }
    // First attempts only: a retry's start is its backoff, not the queue's latency.
    let latency = sqlx::query_as::<_, Latency>(
        r#"
        SELECT queue,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at) * 1000) AS p50_ms,
               percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at) * 1000) AS p99_ms,
               count(*) AS jobs
        FROM job_history
        WHERE id >= $1 AND created_at >= $2 AND started_at IS NOT NULL AND attempts = 1
        GROUP BY queue ORDER BY queue
        "#,
    )
    .bind(floor)
    .bind(since)
    .fetch_all(&state.db)
    .await?;
    Ok(Overview {
        queues: queue_rows(state).await,
        series,
        latency,
        at: now,
    })
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct Misfire {
    pub tick: DateTime<Utc>,
    pub outcome: String,
    pub lag_ms: i64,
}

/// The schedule's recent ticks that did not fire on time.
pub async fn misfires(db: &PgPool, schedule: &str) -> Result<Vec<Misfire>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tick, outcome, lag_ms FROM schedule_ticks
         WHERE schedule = $1 AND outcome <> 'fired' ORDER BY tick DESC LIMIT 3",
    )
    .bind(schedule)
    .fetch_all(db)
    .await
}

/// A backup as the dashboard lists it: the manifest's status columns, not its fingerprints.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct BackupRow {
    pub id: Uuid,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub store: String,
    pub location: String,
    pub size_bytes: Option<i64>,
    pub error: Option<String>,
    pub verify_status: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub verify_error: Option<String>,
}

/// The newest backups first.
pub async fn backups(db: &PgPool, limit: i64) -> Result<Vec<BackupRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, status, started_at, store, location, size_bytes, error, verify_status, verified_at, verify_error
         FROM backups ORDER BY started_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

/// A nightly cashflow run, as its batch's callback recorded it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct NightlyRun {
    pub batch_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub duration_ms: f64,
    pub users: i32,
    pub projected: i32,
    pub failed: i32,
    pub jobs: i32,
    pub dead_jobs: i32,
}

/// The newest nightly runs first.
pub async fn nightly_runs(db: &PgPool, limit: i64) -> Result<Vec<NightlyRun>, sqlx::Error> {
    sqlx::query_as(
        "SELECT batch_id, started_at, extract(epoch FROM finished_at - started_at)::float8 * 1000 AS duration_ms,
                users, projected, failed, jobs, dead_jobs
         FROM cashflow_runs ORDER BY started_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

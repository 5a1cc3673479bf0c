//! `maintenance.cleanup`: deletes what has outlived its use: finished jobs' history, sent and
//! failed outbox rows, old tick-ledger and delivery rows. Hourly by default, in batches so no
//! statement holds locks for long. The audit log is never deleted here.
//!
//! Job history goes a day at a time: the run keeps the daily partitions a week ahead and drops
//! the days past retention whole; only the default partition (ids no day's partition took) is
//! deleted by row.
use chrono::{DateTime, Utc};
use nightshift_catalog::maintenance::{Cleanup, CleanupPayload};
use nightshift_common::{history::partitions, job_ids::first_uuid_v7_at};
use nightshift_queue::{Job, Outcome};
use serde_json::json;
use sqlx::PgPool;

use super::{Handler, JobEnv};

const BATCH: i64 = 5000;

/// Runs `sql` (a DELETE of at most `$2` rows older than `$1`) until it deletes fewer.
async fn in_batches<T>(db: &PgPool, sql: &str, cutoff: T) -> Result<u64, sqlx::Error>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Clone + Send + Sync,
{
    let mut total = 0;
    loop {
        let n = sqlx::query(sql)
            .bind(cutoff.clone())
            .bind(BATCH)
            .execute(db)
            .await?
            .rows_affected();
        total += n;
        if n < BATCH as u64 {
            return Ok(total);
        }
    }
}

pub async fn cleanup(
    db: &PgPool,
    now: DateTime<Utc>,
    history_days: u32,
    records_days: u32,
) -> Result<serde_json::Value, sqlx::Error> {
    let history_cutoff = now - chrono::Duration::days(i64::from(history_days));
    let records_cutoff = now - chrono::Duration::days(i64::from(records_days));
    let made = partitions::ensure_ahead(db, now.date_naive()).await?;
    let dropped = partitions::drop_before(db, history_cutoff).await?;
    let strays = in_batches(
        db,
        "DELETE FROM job_history_default WHERE id IN (SELECT id FROM job_history_default
            WHERE id < $1 AND state IN ('succeeded', 'dead', 'cancelled') LIMIT $2)",
        first_uuid_v7_at(history_cutoff),
    )
    .await?;
    let emails = in_batches(
        db,
        "DELETE FROM email_outbox WHERE message_key IN (SELECT message_key FROM email_outbox
            WHERE created_at < $1 AND state <> 'pending' LIMIT $2)",
        records_cutoff,
    )
    .await?;
    let webhooks = in_batches(
        db,
        "DELETE FROM webhook_outbox WHERE delivery_key IN (SELECT delivery_key FROM webhook_outbox
            WHERE created_at < $1 AND state <> 'pending' LIMIT $2)",
        records_cutoff,
    )
    .await?;
    let ticks = in_batches(
        db,
        "DELETE FROM schedule_ticks WHERE (schedule, tick) IN (SELECT schedule, tick FROM schedule_ticks
            WHERE tick < $1 LIMIT $2)",
        records_cutoff,
    )
    .await?;
    let deliveries = in_batches(
        db,
        "DELETE FROM reminder_deliveries WHERE (reminder_id, due_date) IN (SELECT reminder_id, due_date
            FROM reminder_deliveries WHERE notify_at < $1 AND state = 'handed_off' LIMIT $2)",
        records_cutoff,
    )
    .await?;
    Ok(json!({
        "history_partitions_made": made,
        "deleted": {
        "job_history": dropped as u64 + strays,
        "email_outbox": emails, "webhook_outbox": webhooks,
        "schedule_ticks": ticks, "reminder_deliveries": deliveries,
        },
    }))
}

impl Handler for Cleanup {
    async fn run(env: &JobEnv, job: &Job, p: CleanupPayload) -> Outcome {
        let (history, records) = (p.history_days.unwrap_or(30), p.records_days.unwrap_or(90));
        // The reminder scan looks back 24 h and the idempotency keys live 24 h: anything
        // shorter than two days could let a duplicate through.
        if history < 1 || records < 2 {
            return Outcome::Dead("history_days must be ≥ 1 and records_days ≥ 2".into());
        }
        let progress = super::progress::Progress::of(env, job);
        progress.report(0, "cleaning up").await;
        match cleanup(&env.db, nightshift_queue::clock::now(), history, records).await {
            Ok(report) => {
                progress.report(100, "done").await;
                Outcome::Succeeded(Some(report.to_string()))
            }
            Err(e) => Outcome::retry(format!("cleaning up: {e}")),
        }
    }
}

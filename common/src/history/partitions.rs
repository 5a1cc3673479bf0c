//! `job_history` is partitioned by UTC day on the UUIDv7 id (migration 0012). Partitions are
//! made a week ahead, so a day's jobs never land in the default partition while the platform
//! runs, and retention drops whole days: the SQL functions do the work, in one place for the
//! migration, the maintenance job and an operator at `psql`.
use chrono::{DateTime, Days, NaiveDate, Utc};
use sqlx::PgExecutor;

/// Days made ahead of today: a platform stopped for less than this needs no catch-up.
pub const DAYS_AHEAD: u64 = 7;

/// Makes the missing partitions from yesterday (a clock a little behind) to a week ahead;
/// returns how many it made.
pub async fn ensure_ahead(db: impl PgExecutor<'_>, today: NaiveDate) -> Result<i32, sqlx::Error> {
    ensure(db, today - Days::new(1), today + Days::new(DAYS_AHEAD)).await
}

/// Makes the missing partitions of the days `first..=last`, moving each day's rows out of the
/// default partition.
pub async fn ensure(db: impl PgExecutor<'_>, first: NaiveDate, last: NaiveDate) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT job_history_ensure_partitions($1, $2)")
        .bind(first)
        .bind(last)
        .fetch_one(db)
        .await
}

/// Drops the partitions of the days wholly before `cutoff`, keeping their unfinished jobs;
/// returns the number of finished jobs dropped. The day `cutoff` falls in stays whole, so a
/// job is kept between the retention and a day longer.
pub async fn drop_before(db: impl PgExecutor<'_>, cutoff: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT job_history_drop_partitions_before($1)")
        .bind(cutoff.date_naive())
        .fetch_one(db)
        .await
}

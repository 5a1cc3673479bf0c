//! The tick ledger in PostgreSQL: the record of what every schedule did with every tick.
use chrono::{DateTime, Utc};
use sqlx::PgPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickOutcome {
    Fired,
    FiredLate,
    /// Missed, and merged into a later tick's run.
    Coalesced,
    Skipped,
}

impl TickOutcome {
    fn as_str(self) -> &'static str {
        match self {
            TickOutcome::Fired => "fired",
            TickOutcome::FiredLate => "fired_late",
            TickOutcome::Coalesced => "coalesced",
            TickOutcome::Skipped => "skipped",
        }
    }
}

pub async fn last_tick(pool: &PgPool, schedule: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT max(tick) FROM schedule_ticks WHERE schedule = $1")
        .bind(schedule)
        .fetch_one(pool)
        .await
}

/// Records a tick once: another replica that got there first keeps its row. Returns whether
/// this call recorded it.
pub async fn record(
    pool: &PgPool,
    schedule: &str,
    tick: DateTime<Utc>,
    outcome: TickOutcome,
    job_id: Option<&str>,
    lag_ms: i64,
) -> Result<bool, sqlx::Error> {
    let job = job_id.and_then(|id| uuid::Uuid::parse_str(id).ok());
    let done = sqlx::query(
        "INSERT INTO schedule_ticks (schedule, tick, outcome, job_id, lag_ms) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (schedule, tick) DO NOTHING",
    )
    .bind(schedule)
    .bind(tick)
    .bind(outcome.as_str())
    .bind(job)
    .bind(lag_ms)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

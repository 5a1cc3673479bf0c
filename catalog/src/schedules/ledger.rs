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
    /// Not run: the previous run of a no-overlap schedule had not finished.
    Overlapped,
}

impl TickOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            TickOutcome::Fired => "fired",
            TickOutcome::FiredLate => "fired_late",
            TickOutcome::Coalesced => "coalesced",
            TickOutcome::Skipped => "skipped",
            TickOutcome::Overlapped => "overlapped",
        }
    }
}

/// PostgreSQL's time: the clock every scheduler replica decides its ticks by.
pub async fn now(pool: &PgPool) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(pool).await
}

pub async fn last_tick(pool: &PgPool, schedule: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT max(tick) FROM schedule_ticks WHERE schedule = $1")
        .bind(schedule)
        .fetch_one(pool)
        .await
}

/// The ticks recorded in (after, until].
pub async fn ticks_between(
    pool: &PgPool,
    schedule: &str,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<std::collections::HashSet<DateTime<Utc>>, sqlx::Error> {
    let ticks: Vec<DateTime<Utc>> =
        sqlx::query_scalar("SELECT tick FROM schedule_ticks WHERE schedule = $1 AND tick > $2 AND tick <= $3")
            .bind(schedule)
            .bind(after)
            .bind(until)
            .fetch_all(pool)
            .await?;
    Ok(ticks.into_iter().collect())
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

pub async fn is_paused(pool: &PgPool, schedule: &str) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query_scalar::<_, bool>("SELECT paused FROM schedule_state WHERE schedule = $1")
            .bind(schedule)
            .fetch_optional(pool)
            .await?
            .unwrap_or(false),
    )
}

pub async fn set_paused(pool: &PgPool, schedule: &str, paused: bool, by: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO schedule_state (schedule, paused, updated_by) VALUES ($1, $2, $3)
         ON CONFLICT (schedule) DO UPDATE SET paused = EXCLUDED.paused, updated_by = EXCLUDED.updated_by, updated_at = now()",
    )
    .bind(schedule)
    .bind(paused)
    .bind(by)
    .execute(pool)
    .await?;
    Ok(())
}

/// The newest recorded tick of a schedule: (tick, outcome, job id).
pub async fn latest(
    pool: &PgPool,
    schedule: &str,
) -> Result<Option<(DateTime<Utc>, String, Option<uuid::Uuid>)>, sqlx::Error> {
    sqlx::query_as("SELECT tick, outcome, job_id FROM schedule_ticks WHERE schedule = $1 ORDER BY tick DESC LIMIT 1")
        .bind(schedule)
        .fetch_optional(pool)
        .await
}

/// The job of the newest tick that ran.
pub async fn last_job(pool: &PgPool, schedule: &str) -> Result<Option<uuid::Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT job_id FROM schedule_ticks WHERE schedule = $1 AND job_id IS NOT NULL ORDER BY tick DESC LIMIT 1",
    )
    .bind(schedule)
    .fetch_optional(pool)
    .await
}

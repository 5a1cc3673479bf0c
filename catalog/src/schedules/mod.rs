//! Periodic jobs: the schedules file (`definition`: cron maths, time zones, misfire policy; pure
//! and unit-tested), the tick ledger in PostgreSQL (`ledger`: what fired, was skipped or missed,
//! and which schedules are paused) and the push of a schedule's job (`fire`). The scheduler's
//! loop fires ticks with them; the API lists, pauses and runs schedules with them, without
//! linking the scheduler.
use nightshift_queue::QueueError;

mod definition;
mod fire;
pub mod ledger;

pub use definition::{Misfire, Schedule, load, parse_schedules};
pub use fire::{fire, run_now, target};
pub use ledger::TickOutcome;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule `{name}`: bad cron expression `{expr}`: {reason}")]
    Cron { name: String, expr: String, reason: String },
    #[error("schedule `{name}`: unknown job kind `{kind}`")]
    UnknownKind { name: String, kind: String },
    #[error("schedule `{name}`: unknown time zone `{zone}`")]
    TimeZone { name: String, zone: String },
    #[error("schedules file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("redis: {0}")]
    Redis(#[from] QueueError),
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
}

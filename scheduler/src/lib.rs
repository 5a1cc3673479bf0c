//! The scheduler: fires periodic jobs from cron expressions, exactly once per tick whatever the
//! number of replicas or their clock skew. Each replica pushes a due tick with a deterministic
//! idempotency key (schedule + tick instant), so the queue holds one job per tick, then records
//! the tick in the PostgreSQL ledger under a UNIQUE (schedule, tick) key. The ledger is also
//! how a restarted scheduler knows what it missed: each schedule's misfire policy decides, and
//! what it decided is recorded. Correctness needs no leader lock.
//!
//! `schedule` parses the schedules file and does the cron maths (pure, unit-tested); `run` is
//! the loop that fires due ticks; `ledger` records them.
use nightshift_queue::QueueError;

pub mod ledger;
mod run;
mod schedule;

pub use ledger::TickOutcome;
pub use run::{run, run_now};
pub use schedule::{Misfire, Schedule, load, parse_schedules};

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
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

//! What the queue reports of a job: its record for status reads and operators, its progress,
//! each state change for the history, and a batch's outcome for its callback.
use std::sync::Arc;

use serde::Serialize;

use super::{Concurrency, JobState, NewJob};

/// Everything Redis holds about one job, for status reads and operators.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    pub id: String,
    pub queue: String,
    pub kind: String,
    pub payload: String,
    pub state: JobState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub created_at_ms: i64,
    pub run_at_ms: Option<i64>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub error: Option<String>,
    pub result: Option<String>,
    pub worker: Option<String>,
    pub idempotency_key: Option<String>,
    pub priority: u8,
    /// The dedupe key it was pushed under, in its client's namespace.
    pub dedupe_key: Option<String>,
    /// What the handler last reported of how far it is.
    pub progress: Option<Progress>,
    pub concurrency: Option<Concurrency>,
    pub group: Option<String>,
    pub rate_key: Option<String>,
    /// Held back by its rate key: `run_at_ms` is the start its rate reserved.
    pub rate_delayed: bool,
    pub batch: Option<String>,
    pub trace_parent: Option<String>,
}

/// What a batch's callback job is told of its batch, under `batch` in its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchOutcome {
    pub id: String,
    pub total: i32,
    pub succeeded: i32,
    pub dead: i32,
    pub cancelled: i32,
    /// The first 100 jobs that ended dead.
    pub dead_ids: Vec<String>,
}

/// A batch job's final state, as the queue reported it (at least once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEvent {
    pub batch: String,
    pub job: String,
    pub state: JobState,
}

impl JobRecord {
    /// A job as `push` stored it, before any attempt: what its history row starts from.
    pub fn pushed(id: &str, queue: &str, job: &NewJob, created_at_ms: i64) -> Self {
        JobRecord {
            id: id.to_string(),
            queue: queue.to_string(),
            kind: job.kind.clone(),
            payload: job.payload.clone(),
            state: if job.delay.is_some() {
                JobState::Scheduled
            } else {
                JobState::Queued
            },
            attempts: 0,
            max_attempts: job.max_attempts,
            created_at_ms,
            run_at_ms: None,
            started_at_ms: None,
            finished_at_ms: None,
            error: None,
            result: None,
            worker: None,
            idempotency_key: job.idempotency_key.clone(),
            priority: job.priority,
            dedupe_key: job.dedupe.as_ref().map(|d| d.key.clone()),
            progress: None,
            concurrency: job.concurrency.clone(),
            group: job.group.clone(),
            rate_key: job.rate.as_ref().map(|r| r.key.clone()),
            rate_delayed: false,
            batch: job.batch.clone(),
            trace_parent: job.trace_parent.clone(),
        }
    }
}

/// How far a running job is, as its handler reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// 0 to 100.
    pub percent: u8,
    pub message: String,
    pub at_ms: i64,
}

/// The longest progress message kept.
pub const PROGRESS_MESSAGE_MAX: usize = 200;

/// One state change of a job, reported to an observer (the PostgreSQL history writer) after
/// Redis committed it.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub id: String,
    pub queue: Arc<str>,
    pub kind: String,
    /// Absent when the reaper reports a job it did not load.
    pub payload: Option<Arc<str>>,
    pub state: JobState,
    pub attempt: u32,
    pub max_attempts: Option<u32>,
    pub created_at_ms: Option<i64>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: i64,
    pub error: Option<String>,
    pub result: Option<String>,
    pub worker: String,
}

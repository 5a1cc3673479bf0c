//! A leased job as its handler gets it, and what the handler decided.
use std::{sync::Arc, time::Duration};

/// A leased job, as handed to the handler.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub queue: Arc<str>,
    pub kind: String,
    pub payload: Arc<str>,
    /// 1 for the first run.
    pub attempt: u32,
    pub max_attempts: u32,
    pub created_at_ms: i64,
    pub started_at_ms: i64,
    pub timeout: Option<Duration>,
    /// The `traceparent` of the context that created it, if it was traced.
    pub trace_parent: Option<String>,
    /// This lease's member in the in-flight set (`id|worker#attempt`): removing it is how an
    /// outcome proves the lease is still ours.
    pub(crate) lease: String,
}

/// What a handler decided. Handlers return what happens next, as Oban's `{:snooze}` and
/// `{:cancel}` do, rather than only Ok/Err.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Done; the optional result is JSON text kept with the job.
    Succeeded(Option<String>),
    /// Try again, after the given delay or the queue's backoff. Turns into `Dead` once the
    /// job has used its attempts.
    Retry { error: String, after: Option<Duration> },
    /// Give up now: retrying cannot help (bad payload, permanent refusal).
    Dead(String),
    /// Stop without error (an operator cancelled it, or the work no longer applies).
    Cancelled(String),
    /// Not now, and not a failure: run again after `after` without using an attempt, as
    /// Oban's `{:snooze}` does (a rate limit, a resource another job holds).
    Snooze { reason: String, after: Duration },
}

impl Outcome {
    pub fn retry(error: impl Into<String>) -> Self {
        Outcome::Retry {
            error: error.into(),
            after: None,
        }
    }
}

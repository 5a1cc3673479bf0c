use std::{fmt, str::FromStr, sync::Arc, time::Duration};

use serde::Serialize;

/// Where a job is in its life. `scheduled` waits for its time, `retrying` waits for its
/// backoff, `dead` exhausted its attempts (operators may retry or discard it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Scheduled,
    Queued,
    Running,
    Succeeded,
    Retrying,
    Dead,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 7] = [
        JobState::Scheduled,
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Retrying,
        JobState::Dead,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Retrying => "retrying",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Dead | JobState::Cancelled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown job state `{0}`")]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// A job to push. The payload is JSON text; the queue never interprets it.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub kind: String,
    pub payload: String,
    pub max_attempts: u32,
    pub delay: Option<Duration>,
    pub idempotency_key: Option<String>,
    pub timeout: Option<Duration>,
    pub dedupe: Option<Dedupe>,
    /// 0 runs first, 9 last; [`DEFAULT_PRIORITY`] unless set. Ignored for a job with a
    /// group: groups take their turns at the default priority.
    pub priority: u8,
    pub concurrency: Option<Concurrency>,
    /// Ready jobs of a queue are taken round-robin across groups.
    pub group: Option<String>,
    pub rate: Option<RateKey>,
    /// The batch it belongs to: its final state is reported on the queue's batch event list.
    pub batch: Option<String>,
    /// The W3C `traceparent` of the context that created it (a request's `publish` span): its
    /// runs link to it.
    pub trace_parent: Option<String>,
}

/// At most `limit` jobs with `key` hold a lease at once, across every worker of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Concurrency {
    pub key: String,
    pub limit: u32,
}

/// How fast jobs sharing a rate key may start: `count` per `per`, in bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
    pub burst: u32,
}

impl Rate {
    pub const fn per_second(count: u32, burst: u32) -> Self {
        Rate {
            count,
            per: Duration::from_secs(1),
            burst,
        }
    }

    /// Time between two starts, in microseconds (at least 1).
    pub fn interval_us(&self) -> u64 {
        (self.per.as_micros() as u64 / u64::from(self.count.max(1))).max(1)
    }
}

/// Jobs sharing `key` start at most at `rate`, across every worker of the queue. A job over
/// the rate is scheduled for its turn, not failed, and the wait is not an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateKey {
    pub key: String,
    pub rate: Rate,
}

/// What separates the flow fields on the wire: not a printable character, so it cannot occur
/// in a key the API accepted; [`NewJob`]'s setters strip it from keys made in code.
pub(crate) const FLOW_SEP: char = '\u{1f}';

fn wire_key(key: String) -> String {
    if key.contains(FLOW_SEP) {
        key.replace(FLOW_SEP, " ")
    } else {
        key
    }
}

/// The priority of a job that names none: the middle, so work can go either side of it.
pub const DEFAULT_PRIORITY: u8 = 5;
/// The lowest priority (the largest number); 0 is the highest.
pub const LOWEST_PRIORITY: u8 = 9;

/// How a push meets an earlier job pushed under the same key (in the same queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupeMode {
    /// While that job is scheduled, queued, running or retrying, the push returns it.
    Pending,
    /// For the window after that job was pushed, the push returns it.
    Throttle,
    /// The job starts a window after the last push under the key: a push while it waits
    /// replaces its payload, moves its start back and returns it.
    Debounce,
}

impl DedupeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DedupeMode::Pending => "pending",
            DedupeMode::Throttle => "throttle",
            DedupeMode::Debounce => "debounce",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dedupe {
    pub key: String,
    pub mode: DedupeMode,
    /// The throttle or debounce window (unused by `Pending`).
    pub window: Duration,
}

/// What a push did with one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The job's id: this push's, or the earlier job's when the push was absorbed.
    pub id: String,
    /// Absorbed by an earlier job under the same dedupe key (not an idempotency key).
    pub deduplicated: bool,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, payload: impl Into<String>) -> Self {
        NewJob {
            id: new_job_id(),
            kind: kind.into(),
            payload: payload.into(),
            max_attempts: 25,
            delay: None,
            idempotency_key: None,
            timeout: None,
            dedupe: None,
            priority: DEFAULT_PRIORITY,
            concurrency: None,
            group: None,
            rate: None,
            batch: None,
            trace_parent: None,
        }
    }

    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    pub fn dedupe(mut self, mut d: Dedupe) -> Self {
        d.key = wire_key(d.key);
        self.dedupe = Some(d);
        self
    }

    /// At most `limit` (1 or more) jobs with `key` running at once.
    pub fn concurrency(mut self, key: impl Into<String>, limit: u32) -> Self {
        self.concurrency = Some(Concurrency {
            key: wire_key(key.into()),
            limit: limit.max(1),
        });
        self
    }

    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(wire_key(group.into())).filter(|g| !g.is_empty());
        self
    }

    pub fn rate(mut self, key: impl Into<String>, rate: Rate) -> Self {
        self.rate = Some(RateKey {
            key: wire_key(key.into()),
            rate,
        });
        self
    }

    pub fn trace_parent(mut self, tp: Option<String>) -> Self {
        self.trace_parent = tp.map(wire_key);
        self
    }

    pub fn batch(mut self, id: impl Into<String>) -> Self {
        self.batch = Some(wire_key(id.into()));
        self
    }

    /// Whether any flow option beyond the default priority is set.
    pub(crate) fn has_flow(&self) -> bool {
        self.priority != DEFAULT_PRIORITY
            || self.dedupe.is_some()
            || self.concurrency.is_some()
            || self.group.is_some()
            || self.rate.is_some()
            || self.batch.is_some()
            || self.trace_parent.is_some()
    }

    /// 0 (first) to 9 (last); larger values are taken as 9.
    pub fn priority(mut self, p: u8) -> Self {
        self.priority = p.min(LOWEST_PRIORITY);
        self
    }
}

/// Time-ordered ids (UUIDv7): they sort by creation, index well in PostgreSQL, and are unique
/// across processes without coordination.
pub fn new_job_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

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

/// Exponential backoff with "equal jitter": the delay for attempt n is uniformly drawn from
/// [d/2, d] with d = base * 2^(n-1) capped at `max`. Jitter spreads a burst of failures so
/// retries do not hit a recovering dependency all at once.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(3600),
        }
    }
}

impl Backoff {
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(32);
        self.base.saturating_mul(1u32 << exp.min(31)).min(self.max)
    }

    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        half + ceiling.saturating_sub(half).mul_f64(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stays_within_its_jitter_band_and_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(10),
        };
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(4), Duration::from_millis(800));
        assert_eq!(b.ceiling(60), Duration::from_secs(10));
        for attempt in 1..40 {
            let d = b.delay(attempt);
            let c = b.ceiling(attempt);
            assert!(
                d >= c / 2 && d <= c,
                "attempt {attempt}: {d:?} outside [{:?}, {c:?}]",
                c / 2
            );
        }
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
        }
        assert!("bogus".parse::<JobState>().is_err());
    }
}

//! A job to push: its payload, policy and flow fields (priority, delay, concurrency, rate and
//! dedupe keys), and what the push did with it.
use std::time::Duration;

use serde::Serialize;

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

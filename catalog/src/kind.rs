//! What every job kind declares: its wire name, policy, exposure and payload type. The handler
//! that runs it is the worker crate's business; making a job needs only this.
use std::{marker::PhantomData, time::Duration};

use nightshift_queue::{Backoff, NewJob, Rate};
use serde::{Serialize, de::DeserializeOwned};

/// What a job kind declares beside its payload, as Oban workers do.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub queue: &'static str,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub backoff: Backoff,
}

/// Who may enqueue a kind through the API. Declared by every kind, beside its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exposure {
    /// Any token with `jobs:write` (a user-confined one only for its own user).
    Client,
    /// Tokens with the `admin` scope; every request is audited.
    Operator,
    /// Never through the API: the scheduler and other jobs make them.
    Internal,
}

pub(crate) mod sealed {
    /// Implemented only by the `catalog!` list, so a kind cannot exist outside the catalog.
    pub trait Listed {}
}

/// A job kind. `NAME` is the stable wire name: renaming the Rust type must not rename it.
/// Sealed: every kind is declared in this crate and listed once in `catalog!`.
pub trait Kind: sealed::Listed + Send + Sync + 'static {
    const NAME: &'static str;
    const POLICY: Policy;
    const EXPOSURE: Exposure;
    /// A test and benchmark kind: it exists for the API only when diagnostics are switched on
    /// (`NIGHTSHIFT_DIAGNOSTICS=1`).
    const DIAGNOSTIC: bool = false;
    /// The payload field naming the user a job acts on: a user-confined token may enqueue
    /// the kind only for its own user. Kinds without one are refused to such tokens.
    const USER_FIELD: Option<&'static str> = None;
    /// Payload fields the dashboard masks (at any depth), beyond those named like secrets.
    const SENSITIVE: &'static [&'static str] = &[];
    /// Where a job of the kind stands in its queue when the request names no priority: 0
    /// runs first, 9 last.
    const PRIORITY: u8 = nightshift_queue::DEFAULT_PRIORITY;
    /// How fast jobs sharing a rate key may start; a kind without one refuses `rate_key`.
    const RATE: Option<Rate> = None;
    /// Its runs continue the trace of the request that made the job (a child of its `publish`
    /// span) rather than starting their own with a link to it: for work a user waits on.
    const TRACE_AS_CHILD: bool = false;
    type Payload: DeserializeOwned + Serialize + Send;

    /// What the payload's type cannot say (a date's range, a field that depends on another):
    /// the field path under `payload` and the message of a 422. The API checks it before
    /// enqueueing and the handler again before running, for a job queued by an older release.
    fn check(_payload: &Self::Payload) -> Result<(), Invalid> {
        Ok(())
    }

    /// The concurrency key a job of the kind holds while it runs, if any: the kind's own rule
    /// (one projection per user at a time), whoever enqueues it.
    const CONCURRENCY: Option<ConcurrencyRule> = None;

    /// A job of this kind with its policy applied, ready for [`crate::Queues::push`].
    fn job(payload: &Self::Payload) -> Typed<Self>
    where
        Self: Sized,
    {
        // Payloads are derived structs of plain fields: serde_json fails only on maps with
        // non-string keys or on hand-written Serialize impls that error, and no payload has
        // either. The text keeps the struct's field order; the value is made only for a
        // kind with a concurrency rule, which reads it.
        let text = serde_json::to_string(payload).expect("a job payload serializes");
        let job = KindSpec::of::<Self>().job_from(text, || {
            serde_json::to_value(payload).expect("a job payload serializes")
        });
        Typed { job, kind: PhantomData }
    }
}

/// The platform's own keys (the idempotency, dedupe, concurrency, group and rate keys of the
/// jobs it makes) start with this. A caller's keys start with its namespace: a subject without
/// `:` or `~`, or `~<digits>:` (the API's `Caller::key_namespace`), so no caller can name one:
/// a service called `cashflow` cannot take `cashflow:user:1001`'s slot, and no idempotency key
/// is shaped like a nightly page's.
pub const PLATFORM_KEYS: &str = "~platform:";

/// `key` under [`PLATFORM_KEYS`].
pub fn platform_key(key: impl std::fmt::Display) -> String {
    format!("{PLATFORM_KEYS}{key}")
}

/// A kind's concurrency rule: the key is `prefix:<the payload's field>`, so jobs of the kind for
/// the same value (the same user) hold at most `limit` leases at once. Read from the payload as
/// [`Kind::USER_FIELD`] is: no second parse on the enqueue path.
#[derive(Debug, Clone, Copy)]
pub struct ConcurrencyRule {
    pub field: &'static str,
    pub prefix: &'static str,
    pub limit: u32,
}

impl ConcurrencyRule {
    /// `job` holding the rule's key for `payload`; unchanged when the field is absent.
    fn apply(self, job: NewJob, payload: &serde_json::Value) -> NewJob {
        match self.key_of(payload) {
            Some(key) => job.concurrency(key, self.limit),
            None => job,
        }
    }

    fn key_of(self, payload: &serde_json::Value) -> Option<String> {
        let value = match payload.get(self.field)? {
            serde_json::Value::String(s) => s.clone(),
            v @ serde_json::Value::Number(_) => v.to_string(),
            _ => return None,
        };
        Some(self.key(&value))
    }

    /// The key the rule gives jobs for `value` (a user id).
    fn key(self, value: &str) -> String {
        platform_key(format_args!("{}:{value}", self.prefix))
    }
}

/// A payload field a kind refuses and why: (`field`, `message`), the field a path under the
/// payload (`as_of`, `to.address`).
pub type Invalid = (String, String);

/// A job of kind `K`: only [`Kind::job`] makes one, so what is pushed is always a catalog kind
/// with its policy and a payload of its type.
#[must_use]
pub struct Typed<K> {
    pub(crate) job: NewJob,
    kind: PhantomData<fn() -> K>,
}

/// The platform's jobs: every key set here is a [`platform_key`].
impl<K: Kind> Typed<K> {
    /// A second push with the same key returns the first job instead of making another.
    pub fn idempotency_key(mut self, key: impl std::fmt::Display) -> Self {
        self.job = self.job.idempotency_key(platform_key(key));
        self
    }

    /// An earlier job under the same key absorbs this one, as `d.mode` says.
    pub fn dedupe(mut self, mut d: nightshift_queue::Dedupe) -> Self {
        d.key = platform_key(&d.key);
        self.job = self.job.dedupe(d);
        self
    }

    /// Before or after the kind's default priority: 0 runs first, 9 last.
    pub fn priority(mut self, p: u8) -> Self {
        self.job = self.job.priority(p);
        self
    }

    /// At most `limit` jobs with `key` running at once, across every worker.
    pub fn concurrency(mut self, key: impl std::fmt::Display, limit: u32) -> Self {
        self.job = self.job.concurrency(platform_key(key), limit);
        self
    }

    /// Taken round-robin with the queue's other groups.
    pub fn group(mut self, group: impl std::fmt::Display) -> Self {
        self.job = self.job.group(platform_key(group));
        self
    }

    /// Starts at most at the kind's rate among jobs sharing `key` (no-op for a kind without a
    /// rate).
    pub fn rate_key(mut self, key: impl Into<String>) -> Self {
        if let Some(rate) = K::RATE {
            self.job = self
                .job
                .rate(platform_key(format_args!("{}:{}", K::NAME, key.into())), rate);
        }
        self
    }

    /// The untyped job, for bulk pushes of one kind.
    pub fn into_inner(self) -> NewJob {
        self.job
    }
}

/// A kind's catalog entry: what the API and the dashboard need to know of a kind named only
/// by a string (a client's request, a schedule file, a job read back from Redis).
#[derive(Clone, Copy)]
pub struct KindSpec {
    pub name: &'static str,
    pub policy: Policy,
    pub exposure: Exposure,
    pub diagnostic: bool,
    pub user_field: Option<&'static str>,
    pub sensitive: &'static [&'static str],
    pub priority: u8,
    pub rate: Option<Rate>,
    pub trace_as_child: bool,
    validate: fn(&serde_json::Value) -> Result<(), (String, String)>,
    concurrency: Option<ConcurrencyRule>,
}

impl std::fmt::Debug for KindSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindSpec")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl KindSpec {
    /// The entry of a kind known by its type.
    pub fn of<K: Kind>() -> Self {
        KindSpec {
            name: K::NAME,
            policy: K::POLICY,
            exposure: K::EXPOSURE,
            diagnostic: K::DIAGNOSTIC,
            user_field: K::USER_FIELD,
            sensitive: K::SENSITIVE,
            priority: K::PRIORITY,
            rate: K::RATE,
            trace_as_child: K::TRACE_AS_CHILD,
            validate: |v| {
                let payload = serde_path_to_error::deserialize::<_, K::Payload>(v).map_err(|e| {
                    let path = e.path().to_string();
                    let field = if path == "." {
                        "payload".to_string()
                    } else {
                        format!("payload.{path}")
                    };
                    (field, e.into_inner().to_string())
                })?;
                K::check(&payload).map_err(|(field, message)| (format!("payload.{field}"), message))
            },
            concurrency: K::CONCURRENCY,
        }
    }

    /// Checks a payload against the kind's schema; the error is (field path, message).
    pub fn validate(&self, payload: &serde_json::Value) -> Result<(), (String, String)> {
        (self.validate)(payload)
    }

    /// The user a payload acts on, per the kind's `USER_FIELD`.
    pub fn user_of(&self, payload: &serde_json::Value) -> Option<i64> {
        self.user_field
            .and_then(|f| payload.get(f))
            .and_then(serde_json::Value::as_i64)
    }

    /// The concurrency key the kind's own rule gives a job of `payload`, if it has a rule: a
    /// caller's `concurrency_key` may not replace it.
    pub fn own_concurrency_key(&self, payload: &serde_json::Value) -> Option<String> {
        self.concurrency?.key_of(payload)
    }

    /// A job of this kind with its policy applied, from a payload checked by [`Self::validate`].
    pub fn new_job(&self, payload: &serde_json::Value) -> NewJob {
        self.job_from(payload.to_string(), || payload.clone())
    }

    /// The one place a job of a kind is built, typed ([`Kind::job`]) or not ([`Self::new_job`]):
    /// the kind's policy (attempts, timeout, priority) and its concurrency rule applied.
    fn job_from(&self, text: String, payload: impl FnOnce() -> serde_json::Value) -> NewJob {
        let job = NewJob::new(self.name, text)
            .max_attempts(self.policy.max_attempts)
            .timeout(self.policy.timeout)
            .priority(self.priority);
        match self.concurrency {
            Some(rule) => rule.apply(job, &payload()),
            None => job,
        }
    }
}

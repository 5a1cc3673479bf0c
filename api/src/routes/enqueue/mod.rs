//! The enqueue path that `POST /v1/jobs`, the batch route and the typed routes share: what a
//! caller may enqueue ([`check`]), then the push and the record ([`push_all`]). A job is
//! answered only once it is in its queue and on record under its caller's name.
use std::{collections::HashMap, time::Duration};

use nightshift_catalog::{Exposure, KindSpec};
use nightshift_common::history;
use nightshift_queue::{JobRecord, NewJob, Pushed, Queue};
use serde_json::Value;
use tracing::Instrument;

use crate::{AppState, auth::Caller, error::ApiError};

pub(crate) mod request;

use request::EnqueueRequest;

const MAX_DELAY_SECS: u64 = 366 * 24 * 3600;
const MAX_ATTEMPTS: u32 = 100;

/// A job the caller may enqueue, with its options applied and its key in the caller's namespace.
pub(crate) struct Checked {
    pub(crate) spec: KindSpec,
    pub(crate) job: NewJob,
}

/// Everything about one job request that needs no I/O: the kind's exposure, the payload against
/// the kind's type, the user a confined token may act on, attempts, delay, and the key.
pub(crate) fn check(
    state: &AppState,
    caller: &Caller,
    req: EnqueueRequest,
    key: Option<String>,
) -> Result<Checked, ApiError> {
    let spec = permitted_kind(state, caller, &req.kind)?;
    spec.validate(&req.payload)
        .map_err(|(field, message)| ApiError::invalid(field, message))?;
    // A confined token enqueues only for its own user; another user is as unknown as a
    // missing one.
    if let Some(user) = caller.user()
        && spec.user_of(&req.payload) != Some(user)
    {
        return Err(ApiError::NotFound("user"));
    }
    let mut job = spec.new_job(&req.payload);
    if let Some(n) = req.max_attempts {
        if !(1..=MAX_ATTEMPTS).contains(&n) {
            return Err(ApiError::invalid(
                "max_attempts",
                format!("must be 1 to {MAX_ATTEMPTS}"),
            ));
        }
        job = job.max_attempts(n);
    }
    if let Some(d) = req.delay_secs {
        if d > MAX_DELAY_SECS {
            return Err(ApiError::invalid(
                "delay_secs",
                format!("must be at most {MAX_DELAY_SECS}"),
            ));
        }
        job = job.delay(Duration::from_secs(d));
    }
    if let Some(k) = &key {
        // Keys are per client: two callers choosing the same key do not collide.
        job = job.idempotency_key(format!("{}:{k}", caller.key_namespace()));
    }
    if let Some(p) = req.priority {
        if req.group.is_some() {
            return Err(ApiError::invalid(
                "group",
                "cannot be combined with priority: groups take their turns at the default priority",
            ));
        }
        let p = u8::try_from(p)
            .ok()
            .filter(|p| *p <= nightshift_queue::LOWEST_PRIORITY)
            .ok_or_else(|| ApiError::invalid("priority", "must be 0 (first) to 9 (last)"))?;
        job = job.priority(p);
    }
    // The concurrency key the kind holds for itself (one projection per user at a time).
    let own = spec.own_concurrency_key(&req.payload);
    if let Some(d) = req.dedupe {
        // Per client and kind, as idempotency keys are per client; and per the kind's own
        // concurrency key: a debounce fold rewrites the payload, and must never move a job to
        // another user while it holds the first user's slot.
        let mut d = d.check()?;
        d.key = match &own {
            Some(own) => format!("{}:{}:{own}:{}", caller.key_namespace(), spec.name, d.key),
            None => format!("{}:{}:{}", caller.key_namespace(), spec.name, d.key),
        };
        job = job.dedupe(d);
    }
    // Keys live in the caller's namespace: a client can neither hold another's slots, join
    // its group nor spend its rate.
    let ns = caller.key_namespace();
    // A kind's own rule always holds.
    if own.is_some() {
        let field = match (&req.concurrency_key, req.concurrency_limit) {
            (Some(_), _) => Some("concurrency_key"),
            (None, Some(_)) => Some("concurrency_limit"),
            (None, None) => None,
        };
        if let Some(field) = field {
            return Err(ApiError::invalid(
                field,
                format!(
                    "`{}` holds a concurrency key of its own; it cannot be replaced",
                    spec.name
                ),
            ));
        }
    }
    match (req.concurrency_key, req.concurrency_limit) {
        (Some(key), limit) => {
            let key = flow_key("concurrency_key", &key)?;
            let limit = match limit {
                None => 1,
                Some(n) => u32::try_from(n)
                    .ok()
                    .filter(|n| CONCURRENCY_LIMIT.contains(n))
                    .ok_or_else(|| ApiError::invalid("concurrency_limit", "must be 1 to 1,000"))?,
            };
            job = job.concurrency(format!("{ns}:{key}"), limit);
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid("concurrency_limit", "needs a concurrency_key"));
        }
        (None, None) => {}
    }
    if let Some(g) = req.group {
        job = job.group(format!("{ns}:{}", flow_key("group", &g)?));
    }
    if let Some(r) = req.rate_key {
        let key = flow_key("rate_key", &r)?;
        let rate = spec
            .rate
            .ok_or_else(|| ApiError::invalid("rate_key", format!("`{}` has no rate limit to apply", spec.name)))?;
        job = job.rate(format!("{}:{ns}:{key}", spec.name), rate);
    }
    Ok(Checked { spec: *spec, job })
}

const CONCURRENCY_LIMIT: std::ops::RangeInclusive<u32> = 1..=1000;
const MAX_FLOW_KEY: usize = 200;

/// A concurrency, group or rate key: 1 to 200 printable characters, or the 422 naming `field`.
pub(crate) fn flow_key<'a>(field: &'static str, key: &'a str) -> Result<&'a str, ApiError> {
    let n = key.chars().count();
    if n == 0 || n > MAX_FLOW_KEY {
        return Err(ApiError::invalid(field, "must be 1 to 200 characters"));
    }
    if !key.chars().all(nightshift_common::text::printable) {
        return Err(ApiError::invalid(
            field,
            "must be printable (no control or format characters)",
        ));
    }
    Ok(key)
}

/// The catalog entry of a kind the caller may enqueue: an unknown kind (or a diagnostic one
/// while diagnostics are off) is a 422 listing the kinds the caller may use; an internal kind,
/// an operator kind without `admin`, or a kind without a user for a user-confined token is a
/// 403 naming `kind`.
pub(crate) fn permitted_kind(state: &AppState, caller: &Caller, kind: &str) -> Result<&'static KindSpec, ApiError> {
    let visible = |s: &KindSpec| !s.diagnostic || state.diagnostics;
    let Some(spec) = nightshift_catalog::find(kind).filter(|s| visible(s)) else {
        let usable: Vec<_> = nightshift_catalog::catalog()
            .values()
            .filter(|s| visible(s) && may_enqueue(caller, s).is_ok())
            .map(|s| s.name)
            .collect();
        return Err(ApiError::invalid(
            "kind",
            format!(
                "unknown job kind `{}` (yours to use: {})",
                nightshift_common::telemetry::untrusted(kind),
                usable.join(", ")
            ),
        ));
    };
    may_enqueue(caller, spec).map_err(|why| ApiError::refused("kind", format!("`{kind}` {why}")))?;
    Ok(spec)
}

/// Why the caller may not enqueue a kind, if it may not.
fn may_enqueue(caller: &Caller, spec: &KindSpec) -> Result<(), &'static str> {
    match spec.exposure {
        Exposure::Internal => Err("is made by the platform itself, never through the API"),
        Exposure::Operator if !caller.is_admin() => Err("is an operator kind: it needs the `admin` scope"),
        Exposure::Operator => Ok(()),
        Exposure::Client if caller.user().is_some() && spec.user_field.is_none() => {
            Err("does not act on one user, so a user-confined token may not enqueue it")
        }
        Exposure::Client => Ok(()),
    }
}

/// Pushes one checked job and records it; its id, or the earlier job's that absorbed it.
pub(crate) async fn push_one(state: &AppState, caller: &Caller, job: Checked) -> Result<Pushed, ApiError> {
    push_all(state, caller, vec![job])
        .await?
        .pop()
        .unwrap_or_else(|| Err(ApiError::Internal("one job in, no answer out".into())))
}

/// Pushes checked jobs on a caller's behalf and records the accepted ones, in one push per
/// queue and one history write for them all: a 202 (or a batch item's id) means the job is in
/// its queue and on record, and only its caller (or an admin) reads it. Answers each job in
/// order: its id, or why it was refused (a key already used for another request). A failure
/// to reach Redis or PostgreSQL fails the whole call.
pub(crate) async fn push_all(
    state: &AppState,
    caller: &Caller,
    jobs: Vec<Checked>,
) -> Result<Vec<Result<Pushed, ApiError>>, ApiError> {
    if !state.redis_watch.answering() {
        return Err(ApiError::Unavailable("the queue"));
    }
    let mut answers: Vec<Option<Result<Pushed, ApiError>>> = (0..jobs.len()).map(|_| None).collect();
    // Redis maps keys per queue: a key already used for a kind of another queue is found in
    // the record, and refused before anything is pushed.
    let keys: Vec<&str> = jobs.iter().filter_map(|c| c.job.idempotency_key.as_deref()).collect();
    let ttl = state
        .queues
        .iter()
        .next()
        .map_or(Duration::ZERO, |q| q.config().idempotency_ttl);
    let since = nightshift_queue::clock::now() - ttl;
    let queue_of_key = history::queues_of_keys(&state.db, &keys, since).await?;
    let mut by_queue: HashMap<&str, (&Queue, Vec<usize>)> = HashMap::new();
    for (i, c) in jobs.iter().enumerate() {
        let queue = state.queues.for_spec(&c.spec);
        if let Some(k) = &c.job.idempotency_key
            && queue_of_key.get(k).is_some_and(|q| q != queue.name())
        {
            answers[i] = Some(Err(ApiError::invalid(
                "Idempotency-Key",
                "was already used for a different request (a kind of another queue)",
            )));
            continue;
        }
        by_queue.entry(queue.name()).or_insert((queue, Vec::new())).1.push(i);
    }
    let mut ids: Vec<Option<String>> = vec![None; jobs.len()];
    for (queue, members) in by_queue.values() {
        // One `publish` span per queue (a producer span, as the messaging conventions name
        // it): the jobs' runs link to its context.
        // Its fields are filled only when traces are exported (every log layer formats them).
        use tracing::field::Empty;
        let span = tracing::info_span!(
            "publish",
            otel.name = Empty,
            otel.kind = Empty,
            messaging.system = Empty,
            messaging.operation.name = Empty,
            messaging.destination.name = Empty,
            messaging.batch.message_count = Empty,
        );
        let tp = nightshift_common::telemetry::exporting()
            .then(|| {
                // Named and kinded before `traceparent` starts it.
                span.record("otel.name", format!("publish {}", queue.name()));
                span.record("otel.kind", "producer");
                span.record("messaging.system", "nightshift");
                span.record("messaging.operation.name", "publish");
                span.record("messaging.destination.name", queue.name());
                span.record("messaging.batch.message_count", members.len());
                nightshift_common::telemetry::traceparent(&span)
            })
            .flatten();
        let batch: Vec<NewJob> = members
            .iter()
            .map(|&i| jobs[i].job.clone().trace_parent(tp.clone()))
            .collect();
        let pushed = queue.push_many(&batch).instrument(span).await?;
        for (&i, pushed) in members.iter().zip(pushed) {
            if pushed.deduplicated {
                // An earlier job took this request in: it is on record already.
                answers[i] = Some(Ok(pushed));
            } else {
                ids[i] = Some(pushed.id);
            }
        }
    }
    // Another id back means the idempotency key was used before: the same request gets the
    // same answer, a different one under the same key is refused.
    let reused: Vec<&str> = ids
        .iter()
        .zip(&jobs)
        .filter_map(|(id, c)| id.as_deref().filter(|id| *id != c.job.id))
        .collect();
    let mut first: HashMap<String, history::Request> = history::requests_of(&state.db, &reused).await?;
    let mut records = Vec::with_capacity(jobs.len());
    for (i, (id, c)) in ids.into_iter().zip(&jobs).enumerate() {
        let Some(id) = id else { continue };
        let payload = serde_json::from_str::<Value>(&c.job.payload).ok();
        let max = Some(c.job.max_attempts as i32);
        // The first request under a key is the one on record, or the first of this call; it
        // is recorded once.
        if let Some((kind0, payload0, max0)) = first.get(&id) {
            let same = *kind0 == c.job.kind && *payload0 == payload && *max0 == max;
            answers[i] = Some(if same {
                Ok(Pushed {
                    id,
                    deduplicated: false,
                })
            } else {
                Err(ApiError::invalid(
                    "Idempotency-Key",
                    "was already used for a different request (kind, payload or max_attempts differ)",
                ))
            });
            continue;
        }
        first.insert(id.clone(), (c.job.kind.clone(), payload, max));
        records.push(JobRecord::pushed(
            &id,
            state.queues.for_spec(&c.spec).name(),
            &c.job,
            nightshift_queue::clock::now().timestamp_millis(),
        ));
        answers[i] = Some(Ok(Pushed {
            id,
            deduplicated: false,
        }));
    }
    let mut per_kind: HashMap<String, u64> = HashMap::new();
    for r in &records {
        *per_kind.entry(r.kind.clone()).or_default() += 1;
    }
    let only = (records.len() == 1).then(|| (records[0].id.clone(), records[0].kind.clone()));
    let submitted = records
        .into_iter()
        .map(|record| history::Submitted {
            record,
            by: caller.subject().to_string(),
            user: caller.user(),
        })
        .collect();
    // With the records of whatever other requests arrive meanwhile: one statement, one commit.
    state.recorder.write(submitted).await.map_err(|e| {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable for the enqueue record");
            ApiError::Unavailable("the database")
        } else {
            ApiError::Internal(Box::new(e))
        }
    })?;
    for (kind, n) in per_kind {
        metrics::counter!("nightshift_api_enqueued_total", "kind" => kind).increment(n);
    }
    match only {
        Some((id, kind)) => tracing::info!(job.id = %id, job.kind = %kind, "job enqueued"),
        None => tracing::info!(
            jobs = answers.iter().flatten().filter(|a| a.is_ok()).count(),
            "jobs enqueued"
        ),
    }
    Ok(answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(ApiError::Internal("a job was left unanswered".into()))))
        .collect())
}

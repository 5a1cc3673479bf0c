//! `POST /v1/jobs` and `GET /v1/jobs/{id}`.
use std::time::Duration;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
};
use nightshift_catalog::{Exposure, KindSpec};
use nightshift_common::{
    auth::Scope,
    history::{self, JobStatus},
};
use nightshift_queue::{JobRecord, JobState, NewJob};
use serde::Deserialize;
use serde_json::{Value, json};

use utoipa::ToSchema;

use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    openapi::{Accepted, Errors},
};

const MAX_DELAY_SECS: u64 = 366 * 24 * 3600;
const MAX_ATTEMPTS: u32 = 100;
const MAX_IDEMPOTENCY_KEY: usize = 255;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnqueueRequest {
    /// A kind of the job catalog, e.g. `cashflow.project`.
    kind: String,
    /// The kind's payload; `{}` when absent.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    payload: Value,
    /// Run no earlier than this many seconds from now (at most a year).
    #[serde(default)]
    #[schema(maximum = 31_622_400)]
    delay_secs: Option<u64>,
    /// Overrides the kind's attempts (1 to 100).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    max_attempts: Option<u32>,
}

fn empty_object() -> Value {
    json!({})
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = |m: &str| ApiError::invalid("Idempotency-Key", m);
    let key = v.to_str().map_err(|_| bad("must be visible ASCII"))?.trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(bad("must be 1 to 255 characters"));
    }
    if !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(bad("must be visible ASCII without spaces"));
    }
    Ok(Some(key.to_string()))
}

/// Enqueue a job (scope `jobs:write`). The same `Idempotency-Key` with the same request returns
/// the first job; with a different request it is a 422.
#[utoipa::path(
    post, path = "/v1/jobs", tag = "jobs",
    request_body = EnqueueRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; keys live 24 h")),
    responses((status = 202, description = "In the queue and on record", body = Accepted), Errors),
    security(("bearer" = ["jobs:write"]))
)]
pub async fn enqueue(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.require(Scope::JobsWrite)?;
    let req: EnqueueRequest = super::body::json(body, false)?;
    let key = idempotency_key(&headers)?;
    let spec = permitted_kind(&state, &caller, &req.kind)?;
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
    let (id, record) = push_for(&state, &caller, state.queues.for_spec(spec), job).await?;
    metrics::counter!("nightshift_api_enqueued_total", "kind" => record.kind.clone()).increment(1);
    tracing::info!(job.id = %id, job.kind = %record.kind, "job enqueued");
    Ok((StatusCode::ACCEPTED, Json(Accepted { id })))
}

/// The catalog entry of a kind the caller may enqueue: an unknown kind (or a diagnostic one
/// while diagnostics are off) is a 422 listing the kinds the caller may use; an internal kind,
/// an operator kind without `admin`, or a kind without a user for a user-confined token is a
/// 403 naming `kind`.
fn permitted_kind(state: &AppState, caller: &Caller, kind: &str) -> Result<&'static KindSpec, ApiError> {
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

/// Pushes a job on a client's behalf and records it under the client's name before answering:
/// 202 means the job is in the queue and on record, and only its client (or an admin) reads it.
pub(crate) async fn push_for(
    state: &AppState,
    caller: &Caller,
    queue: &nightshift_queue::Queue,
    job: NewJob,
) -> Result<(String, JobRecord), ApiError> {
    let (kind, payload, max_attempts, delayed, key) = (
        job.kind.clone(),
        job.payload.clone(),
        job.max_attempts,
        job.delay.is_some(),
        job.idempotency_key.clone(),
    );
    // Redis maps keys per queue: a key already used for a kind of another queue is found in
    // the record, and refused before anything is pushed.
    if let Some(k) = &key {
        let since = chrono::Utc::now() - queue.config().idempotency_ttl;
        if history::queue_of_key(&state.db, k, since)
            .await?
            .is_some_and(|q| q != queue.name())
        {
            return Err(ApiError::invalid(
                "Idempotency-Key",
                "was already used for a different request (a kind of another queue)",
            ));
        }
    }
    let fresh_id = job.id.clone();
    let id = queue.push(job).await?;
    // Another id back means the idempotency key was used before: the same request gets the
    // same answer, a different one under the same key is refused.
    if id != fresh_id
        && let Some((kind0, payload0, max0)) = history::request_of(&state.db, &id).await?
    {
        let same = kind0 == kind
            && serde_json::from_str::<Value>(&payload).ok() == payload0
            && max0 == Some(max_attempts as i32);
        if !same {
            return Err(ApiError::invalid(
                "Idempotency-Key",
                "was already used for a different request (kind, payload or max_attempts differ)",
            ));
        }
    }
    let record = JobRecord {
        id: id.clone(),
        queue: queue.name().to_string(),
        kind,
        payload,
        state: if delayed { JobState::Scheduled } else { JobState::Queued },
        attempts: 0,
        max_attempts,
        created_at_ms: chrono::Utc::now().timestamp_millis(),
        run_at_ms: None,
        started_at_ms: None,
        finished_at_ms: None,
        error: None,
        result: None,
        worker: None,
        idempotency_key: key,
    };
    history::record_enqueued(&state.db, &record, caller.subject(), caller.user()).await?;
    Ok((id, record))
}

/// A job's state, attempts, error and result (scope `jobs:read`; a client sees its own jobs).
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = uuid::Uuid, Path, description = "The job id")),
    responses((status = 200, description = "The job", body = JobStatus), Errors),
    security(("bearer" = ["jobs:read"]))
)]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobStatus>, ApiError> {
    caller.require(Scope::JobsRead)?;
    let uuid = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::invalid("id", "is not a job id (UUID)"))?;
    let id = uuid.to_string();
    // A client reads the jobs it enqueued (a service token also those of the user-confined
    // tokens under its subject); another's is as unknown as a missing one.
    if !caller.is_admin() {
        let mine = match history::submitter(&state.db, uuid).await? {
            Some((Some(sub), user)) => sub == caller.subject() && caller.user().is_none_or(|u| user == Some(u)),
            _ => false,
        };
        if !mine {
            return Err(ApiError::NotFound("job"));
        }
    }
    // Redis has the live state; PostgreSQL has it once the Redis keys expired.
    let mut redis_down = false;
    for queue in state.queues.iter() {
        match queue.inspect(&id).await {
            Ok(Some(rec)) => return Ok(Json(JobStatus::from_redis(rec))),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "redis unavailable for status read; trying history");
                redis_down = true;
                break;
            }
        }
    }
    match history::find(&state.db, uuid).await? {
        Some(status) => Ok(Json(status)),
        None if redis_down => Err(ApiError::Unavailable("the queue")),
        None => Err(ApiError::NotFound("job")),
    }
}

// Over 400 lines: the five batch routes share their checks (ownership, jobs, callbacks) and their status view.
//! Batches: jobs counted together, with callbacks enqueued exactly once when all have finished
//! (succeeded, dead or cancelled). `POST /v1/batches` makes one, sealed at once unless `open`;
//! `POST /v1/batches/{id}/jobs` adds to an open one and `POST /v1/batches/{id}/seal` closes it;
//! `GET /v1/batches/{id}` and `GET /v1/batches` read them. Owned as jobs are: another client's
//! batch is a 404.
use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State, rejection::BytesRejection, rejection::QueryRejection},
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use nightshift_common::{
    auth::Scope,
    batches::{self, AddError, Batch, Callback, NewBatch},
};
use nightshift_queue::BatchOutcome;
use serde::{Deserialize, Serialize};
use serde_json::{Value, value::RawValue};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    bulk_enqueue::{MAX_BATCH_BYTES, MAX_BATCH_JOBS, charge, check_item},
    enqueue::request::EnqueueRequest,
    enqueue::{self, Checked},
};
use crate::{AppState, auth::Caller, error::ApiError, openapi::Errors};

/// Jobs in one batch, at most, however many requests added them.
pub const MAX_BATCH_TOTAL: i32 = 100_000;
const MAX_DESCRIPTION: usize = 200;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBatch {
    /// Up to 1,000 jobs, each as in `POST /v1/jobs` but without `dedupe` or an idempotency key
    /// (a job taken in by an earlier one would not be the batch's).
    #[serde(default)]
    #[schema(value_type = Vec<EnqueueRequest>, max_items = 1000)]
    jobs: Vec<Box<RawValue>>,
    /// Enqueued once every job has finished, whatever its outcome.
    on_complete: Option<CallbackRequest>,
    /// Enqueued once every job has finished, if none ended dead or cancelled.
    on_success: Option<CallbackRequest>,
    /// Up to 200 characters, for people.
    #[schema(max_length = 200)]
    description: Option<String>,
    /// Keep the batch open for more jobs (`POST /v1/batches/{id}/jobs`) until it is sealed;
    /// false (the default) seals it with these jobs.
    #[serde(default)]
    open: bool,
}

/// A callback job: a kind the caller may enqueue whose payload takes a `batch` field, where the
/// batch's outcome is put (`id`, `total`, `succeeded`, `dead`, `cancelled`, `dead_ids`: the
/// first 100 dead jobs).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallbackRequest {
    kind: String,
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    payload: Value,
}

fn empty_object() -> Value {
    serde_json::json!({})
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddJobs {
    /// 1 to 1,000 jobs, as in `POST /v1/batches`.
    #[schema(value_type = Vec<EnqueueRequest>, min_items = 1, max_items = 1000)]
    jobs: Vec<Box<RawValue>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Created {
    id: String,
    /// The jobs' ids, in the order of the request.
    job_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchStatus {
    id: String,
    /// `open` (jobs may be added), `sealed` (waiting for its jobs) or `finished`.
    state: &'static str,
    description: Option<String>,
    total: i32,
    /// Jobs not finished yet.
    pending: i32,
    succeeded: i32,
    dead: i32,
    cancelled: i32,
    created_at: DateTime<Utc>,
    sealed_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    callbacks: Vec<CallbackStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CallbackStatus {
    /// `complete` or `success`.
    on: &'static str,
    kind: String,
    /// Its job, once the batch finished (`on_success` has none when a job failed).
    job_id: Option<String>,
    /// Its job's state, when known.
    job_state: Option<String>,
}

/// Make a batch (scope `jobs:write`): its jobs are pushed and counted; once it is sealed and
/// every job has finished, its callbacks are enqueued exactly once.
#[utoipa::path(
    post, path = "/v1/batches", tag = "batches",
    request_body = CreateBatch,
    responses((status = 202, description = "Made, its jobs in their queues", body = Created), Errors),
    security(("bearer" = ["jobs:write"]))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    caller.require(Scope::JobsWrite)?;
    let req: CreateBatch = super::body::json_within(body, false, MAX_BATCH_BYTES)?;
    if let Some(d) = &req.description
        && (d.chars().count() > MAX_DESCRIPTION || !d.chars().all(nightshift_common::text::printable))
    {
        return Err(ApiError::invalid(
            "description",
            "must be at most 200 printable characters",
        ));
    }
    let on_complete = req
        .on_complete
        .map(|c| callback(&state, &caller, c, "on_complete"))
        .transpose()?;
    let on_success = req
        .on_success
        .map(|c| callback(&state, &caller, c, "on_success"))
        .transpose()?;
    let id = Uuid::now_v7();
    let jobs = checked_jobs(&state, &caller, req.jobs, id, 0).await?;
    let ids: Vec<Uuid> = jobs.iter().filter_map(|c| c.job.id.parse().ok()).collect();
    let batch = NewBatch {
        id,
        submitted_by: Some(caller.subject().to_string()),
        submitted_user: caller.user(),
        description: req.description,
        on_complete,
        on_success,
        sealed: !req.open,
        traceparent: nightshift_common::telemetry::exporting()
            .then(|| nightshift_common::telemetry::traceparent(&tracing::Span::current()))
            .flatten(),
    };
    batches::create(&state.db, &batch, &ids, Some(state.limits.open_batches))
        .await
        .map_err(|e| match e {
            batches::CreateError::TooManyOpen(_) => ApiError::Conflict(e.to_string()),
            batches::CreateError::Database(e) => e.into(),
        })?;
    let job_ids = push(&state, &caller, id, jobs, &ids).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Created {
            id: id.to_string(),
            job_ids,
        }),
    ))
}

/// Add jobs to an open batch (scope `jobs:write`); a sealed one is a 409.
#[utoipa::path(
    post, path = "/v1/batches/{id}/jobs", tag = "batches",
    params(("id" = String, Path, description = "The batch")),
    request_body = AddJobs,
    responses((status = 202, description = "Added, in their queues", body = Created), Errors),
    security(("bearer" = ["jobs:write"]))
)]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    caller.require(Scope::JobsWrite)?;
    let batch = owned(&state, &caller, &id).await?;
    let req: AddJobs = super::body::json_within(body, false, MAX_BATCH_BYTES)?;
    if req.jobs.is_empty() {
        return Err(ApiError::invalid(
            "jobs",
            format!("must hold 1 to {MAX_BATCH_JOBS} jobs"),
        ));
    }
    let jobs = checked_jobs(&state, &caller, req.jobs, batch.id, batch.total).await?;
    let ids: Vec<Uuid> = jobs.iter().filter_map(|c| c.job.id.parse().ok()).collect();
    batches::add(&state.db, batch.id, &ids).await.map_err(|e| match e {
        AddError::NotFound => ApiError::NotFound("batch"),
        AddError::Sealed => ApiError::Conflict("the batch is sealed: no job may be added".into()),
        AddError::Db(e) => e.into(),
    })?;
    let job_ids = push(&state, &caller, batch.id, jobs, &ids).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Created {
            id: batch.id.to_string(),
            job_ids,
        }),
    ))
}

/// Seal a batch (scope `jobs:write`): no job may be added, and it finishes once its jobs have.
/// Sealing twice is harmless.
#[utoipa::path(
    post, path = "/v1/batches/{id}/seal", tag = "batches",
    params(("id" = String, Path, description = "The batch")),
    responses((status = 200, description = "Sealed", body = BatchStatus), Errors),
    security(("bearer" = ["jobs:write"]))
)]
pub async fn seal(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BatchStatus>, ApiError> {
    caller.require(Scope::JobsWrite)?;
    let batch = owned(&state, &caller, &id).await?;
    batches::seal(&state.db, batch.id).await?;
    let batch = batches::get(&state.db, batch.id)
        .await?
        .ok_or(ApiError::NotFound("batch"))?;
    Ok(Json(status_of(&state, batch).await))
}

/// A batch: counts per outcome, its times, and its callbacks' jobs (scope `jobs:read`).
#[utoipa::path(
    get, path = "/v1/batches/{id}", tag = "batches",
    params(("id" = String, Path, description = "The batch")),
    responses((status = 200, description = "The batch", body = BatchStatus), Errors),
    security(("bearer" = ["jobs:read"]))
)]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BatchStatus>, ApiError> {
    caller.require(Scope::JobsRead)?;
    let batch = owned(&state, &caller, &id).await?;
    Ok(Json(status_of(&state, batch).await))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// open, sealed or finished.
    state: Option<String>,
    /// Made at or after this instant (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Made before this instant (RFC 3339).
    until: Option<DateTime<Utc>>,
    /// 1 to 500; 50 when absent.
    limit: Option<i64>,
}

/// The caller's batches, newest first (an admin's: everyone's) (scope `jobs:read`).
#[utoipa::path(
    get, path = "/v1/batches", tag = "batches",
    params(ListQuery),
    responses((status = 200, description = "Batches, newest first", body = Vec<BatchStatus>), Errors),
    security(("bearer" = ["jobs:read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<BatchStatus>>, ApiError> {
    caller.require(Scope::JobsRead)?;
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    if let Some(s) = &q.state
        && !["open", "sealed", "finished"].contains(&s.as_str())
    {
        return Err(ApiError::invalid("state", "must be open, sealed or finished"));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 500"));
    }
    let filter = batches::ListFilter {
        submitted_by: (!caller.is_admin()).then(|| caller.subject().to_string()),
        submitted_user: caller.user(),
        state: q.state,
        since: q.since,
        until: q.until,
        limit,
    };
    let mut out = Vec::new();
    for b in batches::list(&state.db, &filter).await? {
        out.push(status_of(&state, b).await);
    }
    Ok(Json(out))
}

/// The batch `id` if the caller may see it; another's is as unknown as a missing one.
async fn owned(state: &AppState, caller: &Caller, id: &str) -> Result<Batch, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::invalid("id", "is not a batch id (UUID)"))?;
    let batch = batches::get(&state.db, id).await?.ok_or(ApiError::NotFound("batch"))?;
    if caller.owns(batch.submitted_by.as_deref(), batch.submitted_user) {
        Ok(batch)
    } else {
        Err(ApiError::NotFound("batch"))
    }
}

/// Checks the jobs of a request as `POST /v1/jobs` would, all or none, within the batch limit
/// and the caller's rate, and makes them the batch's.
async fn checked_jobs(
    state: &AppState,
    caller: &Caller,
    items: Vec<Box<RawValue>>,
    batch: Uuid,
    already: i32,
) -> Result<Vec<Checked>, ApiError> {
    let n = items.len();
    if n > MAX_BATCH_JOBS {
        return Err(ApiError::invalid(
            "jobs",
            format!("must hold at most {MAX_BATCH_JOBS} jobs per request"),
        ));
    }
    if already as usize + n > MAX_BATCH_TOTAL as usize {
        return Err(ApiError::invalid(
            "jobs",
            format!("a batch holds at most {MAX_BATCH_TOTAL} jobs; it has {already}"),
        ));
    }
    charge(state, caller, n).await?;
    let mut jobs = Vec::with_capacity(n);
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("jobs[{i}]");
        let mut c = check_item(state, caller, &item, &at).map_err(|e| e.within(&at))?;
        if c.job.idempotency_key.is_some() {
            return Err(ApiError::invalid(
                format!("{at}.idempotency_key"),
                "is not taken in a batch: the job it named would not be the batch's",
            ));
        }
        if c.job.dedupe.is_some() {
            return Err(ApiError::invalid(
                format!("{at}.dedupe"),
                "is not taken in a batch: an earlier job taking this one in would not be the batch's",
            ));
        }
        c.job = c.job.batch(batch.to_string());
        jobs.push(c);
    }
    Ok(jobs)
}

/// Pushes a batch's recorded jobs; on failure takes them back from the batch, which must not
/// wait for jobs that never reached a queue.
async fn push(
    state: &AppState,
    caller: &Caller,
    batch: Uuid,
    jobs: Vec<Checked>,
    ids: &[Uuid],
) -> Result<Vec<String>, ApiError> {
    match enqueue::push_all(state, caller, jobs).await {
        Ok(answers) => answers.into_iter().map(|a| a.map(|p| p.id)).collect(),
        Err(e) => {
            if let Err(undo) = batches::forget(&state.db, batch, ids).await {
                tracing::error!(batch = %batch, error = %undo, "a batch keeps jobs that were not pushed");
            }
            Err(e)
        }
    }
}

/// A callback the caller may enqueue, whose payload takes the batch's outcome.
fn callback(state: &AppState, caller: &Caller, cb: CallbackRequest, field: &str) -> Result<Callback, ApiError> {
    let spec = enqueue::permitted_kind(state, caller, &cb.kind).map_err(|e| e.within(field))?;
    let Value::Object(mut probe) = cb.payload.clone() else {
        return Err(ApiError::invalid(format!("{field}.payload"), "must be a JSON object"));
    };
    if probe.contains_key("batch") {
        return Err(ApiError::invalid(
            format!("{field}.payload.batch"),
            "is the batch's outcome, added when it finishes",
        ));
    }
    let example = BatchOutcome {
        id: Uuid::nil().to_string(),
        total: 0,
        succeeded: 0,
        dead: 0,
        cancelled: 0,
        dead_ids: Vec::new(),
    };
    probe.insert(
        "batch".into(),
        serde_json::to_value(example).map_err(|e| ApiError::Internal(e.into()))?,
    );
    let probe = Value::Object(probe);
    spec.validate(&probe).map_err(|(f, message)| {
        if message.starts_with("unknown field `batch`") {
            ApiError::invalid(
                format!("{field}.kind"),
                format!(
                    "`{}` takes no batch outcome (its payload has no `batch` field)",
                    spec.name
                ),
            )
        } else {
            ApiError::invalid(format!("{field}.{f}"), message)
        }
    })?;
    if let Some(user) = caller.user()
        && spec.user_of(&probe) != Some(user)
    {
        return Err(ApiError::NotFound("user"));
    }
    Ok(Callback {
        kind: cb.kind,
        payload: cb.payload,
    })
}

async fn status_of(state: &AppState, b: Batch) -> BatchStatus {
    let mut callbacks = Vec::new();
    for (on, cb, job) in [
        ("complete", &b.on_complete, b.complete_job),
        ("success", &b.on_success, b.success_job),
    ] {
        let Some(cb) = cb else { continue };
        let job_state = match job {
            Some(id) => job_state(state, &cb.kind, id).await,
            None => None,
        };
        callbacks.push(CallbackStatus {
            on,
            kind: cb.kind.clone(),
            job_id: job.map(|j| j.to_string()),
            job_state,
        });
    }
    BatchStatus {
        id: b.id.to_string(),
        state: b.state(),
        description: b.description,
        total: b.total,
        pending: b.pending,
        succeeded: b.succeeded,
        dead: b.dead,
        cancelled: b.cancelled,
        created_at: b.created_at,
        sealed_at: b.sealed_at,
        finished_at: b.finished_at,
        callbacks,
    }
}

/// A callback job's state: Redis's while it is there, then the history's.
async fn job_state(state: &AppState, kind: &str, id: Uuid) -> Option<String> {
    let spec = nightshift_catalog::find(kind)?;
    if let Ok(Some(rec)) = state.queues.for_spec(spec).inspect(&id.to_string()).await {
        return Some(rec.state.as_str().to_string());
    }
    nightshift_common::history::find(&state.db, id)
        .await
        .ok()
        .flatten()
        .map(|s| s.state)
}

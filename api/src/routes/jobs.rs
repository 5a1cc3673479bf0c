//! `POST /v1/jobs` and `GET /v1/jobs/{id}`; the checks and the push they share with the batch
//! route are `enqueue`.
use super::enqueue::request::{EnqueueRequest, idempotency_key};
use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    openapi::{Accepted, Errors},
};
use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode},
};
use nightshift_common::{
    auth::Scope,
    history::{self, JobStatus},
};

/// Enqueue a job (scope `jobs:write`). The same `Idempotency-Key` with the same request returns
/// the first job; with a different request it is a 422. A request an earlier job takes in
/// under its `dedupe` key is a 200 with that job's id.
#[utoipa::path(
    post, path = "/v1/jobs", tag = "jobs",
    request_body = EnqueueRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; keys live 24 h")),
    responses(
        (status = 202, description = "In the queue and on record", body = Accepted),
        (status = 200, description = "Taken in by an earlier job under the `dedupe` key", body = Accepted),
        Errors
    ),
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
    let key = idempotency_key(headers.get("idempotency-key").map(|v| v.as_bytes()), "Idempotency-Key")?;
    let job = super::enqueue::check(&state, &caller, req, key)?;
    let pushed = super::enqueue::push_one(&state, &caller, job).await?;
    let status = if pushed.deduplicated {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(Accepted {
            id: pushed.id,
            deduplicated: pushed.deduplicated,
        }),
    ))
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
        let mine = history::submitter(&state.db, uuid)
            .await?
            .is_some_and(|(by, user)| caller.owns(by.as_deref(), user));
        if !mine {
            return Err(ApiError::NotFound("job"));
        }
    }
    // Redis has the live state; PostgreSQL has it once the Redis keys expired.
    let mut redis_down = !state.redis_watch.answering();
    for queue in state.queues.iter() {
        if redis_down {
            break;
        }
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

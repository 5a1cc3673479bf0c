//! `POST /v1/jobs/batch`: up to 1,000 jobs in one request, each as in `POST /v1/jobs` with its
//! own idempotency key. One push per queue and one history write for the lot; a bad item
//! refuses only itself, and nothing of a refused item is stored.
use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
};
use nightshift_common::auth::Scope;
use serde::{Deserialize, Serialize};
use serde_json::{Value, value::RawValue};
use utoipa::ToSchema;

use super::{
    enqueue::request::{EnqueueRequest, idempotency_key},
    enqueue::{self, Checked},
};
use crate::{
    AppState, MAX_BODY_BYTES,
    auth::Caller,
    error::ApiError,
    openapi::{ErrorDetail, Errors},
};

/// Jobs in one batch, at most.
pub const MAX_BATCH_JOBS: usize = 1000;
/// A batch's body, at most: a thousand jobs of up to 1 KiB each. Each job alone stays within
/// the single-job limit.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchRequest {
    /// 1 to 1,000 jobs.
    #[schema(value_type = Vec<BatchItem>, min_items = 1, max_items = 1000)]
    jobs: Vec<Box<RawValue>>,
}

/// One job of a batch: the fields of `POST /v1/jobs`, and its own idempotency key.
#[derive(Debug, ToSchema)]
pub(crate) struct BatchItem {
    #[serde(flatten)]
    job: EnqueueRequest,
    /// As `POST /v1/jobs`'s Idempotency-Key header, for this job.
    idempotency_key: Option<String>,
}

/// Each job's answer, in the order of the request.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BatchResponse {
    accepted: usize,
    refused: usize,
    results: Vec<ItemResult>,
}

/// A job's id (in its queue and on record), or why it was refused: the status and error
/// `POST /v1/jobs` would have answered, its field named under `jobs[i]`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum ItemResult {
    Accepted {
        id: String,
        /// True when an earlier job under the item's `dedupe` key took it in.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        deduplicated: bool,
    },
    Refused {
        status: u16,
        error: ErrorDetail,
    },
}

/// Enqueue up to 1,000 jobs (scope `jobs:write`); the rate limit counts jobs.
#[utoipa::path(
    post, path = "/v1/jobs/batch", tag = "jobs",
    request_body = BatchRequest,
    responses((status = 200, description = "Each job's id or error, by index", body = BatchResponse), Errors),
    security(("bearer" = ["jobs:write"]))
)]
pub async fn enqueue_batch(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchResponse>, ApiError> {
    caller.require(Scope::JobsWrite)?;
    let req: BatchRequest = super::body::json_within(body, false, MAX_BATCH_BYTES)?;
    let n = req.jobs.len();
    if !(1..=MAX_BATCH_JOBS).contains(&n) {
        return Err(ApiError::invalid(
            "jobs",
            format!("must hold 1 to {MAX_BATCH_JOBS} jobs"),
        ));
    }
    charge(&state, &caller, n).await?;
    let mut results: Vec<Option<ItemResult>> = (0..n).map(|_| None).collect();
    let mut checked: Vec<(usize, Checked)> = Vec::with_capacity(n);
    for (i, item) in req.jobs.into_iter().enumerate() {
        let at = format!("jobs[{i}]");
        match check_item(&state, &caller, &item, &at) {
            Ok(c) => checked.push((i, c)),
            Err(e) => results[i] = Some(refused(e, &at)),
        }
    }
    let (index, jobs): (Vec<usize>, Vec<Checked>) = checked.into_iter().unzip();
    for (i, answer) in index.into_iter().zip(enqueue::push_all(&state, &caller, jobs).await?) {
        let at = format!("jobs[{i}]");
        results[i] = Some(match answer {
            Ok(p) => ItemResult::Accepted {
                id: p.id,
                deduplicated: p.deduplicated,
            },
            Err(e) => refused(e, &at),
        });
    }
    let results: Vec<ItemResult> = results.into_iter().flatten().collect();
    let accepted = results
        .iter()
        .filter(|r| matches!(r, ItemResult::Accepted { .. }))
        .count();
    Ok(Json(BatchResponse {
        accepted,
        refused: results.len() - accepted,
        results,
    }))
}

/// Takes `n` jobs from the caller's rate budget, all or none: the request took one job's worth,
/// the rest take the others. More than the caller's burst never fits: a 422 naming `jobs`.
pub(super) async fn charge(state: &AppState, caller: &Caller, n: usize) -> Result<(), ApiError> {
    let limit = &state.limits.per_client;
    if n as u64 > limit.burst() {
        return Err(ApiError::invalid(
            "jobs",
            format!(
                "must hold at most {} jobs, this client's rate-limit burst",
                limit.burst()
            ),
        ));
    }
    if n > 1 {
        crate::auth::within_n(state, limit, caller.subject(), n as u64 - 1).await?;
    }
    Ok(())
}

/// One item as `POST /v1/jobs` checks its body and header.
pub(super) fn check_item(state: &AppState, caller: &Caller, item: &RawValue, at: &str) -> Result<Checked, ApiError> {
    if item.get().len() > MAX_BODY_BYTES {
        return Err(ApiError::invalid(
            at,
            format!("is larger than {MAX_BODY_BYTES} bytes, the limit of one job"),
        ));
    }
    let item: Value = serde_json::from_str(item.get()).map_err(|e| ApiError::invalid(at, e.to_string()))?;
    let Value::Object(mut fields) = item else {
        return Err(ApiError::invalid(at, "must be a JSON object"));
    };
    let key = match fields.remove("idempotency_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => idempotency_key(Some(k.as_bytes()), "idempotency_key")?,
        Some(_) => return Err(ApiError::invalid("idempotency_key", "must be a string")),
    };
    let item = BatchItem {
        job: super::body::from_value(Value::Object(fields), at)?,
        idempotency_key: key,
    };
    enqueue::check(state, caller, item.job, item.idempotency_key)
}

fn refused(e: ApiError, at: &str) -> ItemResult {
    // The header of a single enqueue is a field of a batch item.
    let e = match e {
        ApiError::Invalid { field, message } if field == "Idempotency-Key" => ApiError::Invalid {
            field: "idempotency_key".into(),
            message,
        },
        other => other,
    }
    .within(at);
    ItemResult::Refused {
        status: e.status_code().as_u16(),
        error: e.detail(),
    }
}

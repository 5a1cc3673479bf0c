//! What a client sends to enqueue a job, on `POST /v1/jobs` and in a batch: the request body
//! and the idempotency key, as the wire has them (the checks are [`super::check`]).
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::error::ApiError;

const MAX_IDEMPOTENCY_KEY: usize = 255;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnqueueRequest {
    /// A kind of the job catalog (`JobKind` lists those a client may enqueue), e.g.
    /// `cashflow.project`; its payload is checked against the kind's type
    /// (`CashflowProjectPayload`).
    pub(super) kind: String,
    /// The kind's payload; `{}` when absent.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub(super) payload: Value,
    /// Run no earlier than this many seconds from now (at most a year).
    #[serde(default)]
    #[schema(maximum = 31_622_400)]
    pub(super) delay_secs: Option<u64>,
    /// Overrides the kind's attempts (1 to 100).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub(super) max_attempts: Option<u32>,
    /// 0 runs first, 9 last; the kind's default (5 for most) when absent. Within a queue a
    /// ready job never starts after a ready job of a larger number; equal ones run in order.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 9)]
    pub(super) priority: Option<i64>,
    /// Fold this request into an earlier job under the same key (per client and kind).
    #[serde(default)]
    pub(super) dedupe: Option<DedupeRequest>,
    /// At most `concurrency_limit` jobs with this key (per client) run at once, across every
    /// worker. A job waiting for a slot is not an attempt. 1 to 200 printable characters.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub(super) concurrency_key: Option<String>,
    /// 1 to 1,000; 1 when absent. Only with `concurrency_key`.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub(super) concurrency_limit: Option<i64>,
    /// Ready jobs of a queue are taken round-robin across groups (per client), so one group's
    /// backlog delays another's job by about one job per busy group. Not with `priority`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub(super) group: Option<String>,
    /// Jobs of the kind with this key (per client) start at most at the kind's rate; one over
    /// it is delayed to its turn, not failed, and the wait is not an attempt. Only for kinds
    /// whose policy sets a rate.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    pub(super) rate_key: Option<String>,
}

/// How a request meets an earlier job under the same key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DedupeRequest {
    /// 1 to 200 printable characters.
    #[schema(min_length = 1, max_length = 200)]
    key: String,
    /// `pending`: while the earlier job is scheduled, queued, running or retrying, the request
    /// returns it. `throttle`: for `secs` after the earlier job was accepted, the request returns
    /// it. `debounce`: the job starts `secs` after the last request under the key; a request
    /// while it waits replaces its payload, moves its start back and returns it.
    #[schema(pattern = "^(pending|throttle|debounce)$")]
    mode: String,
    /// The window of `throttle` and `debounce`, 1 to 86,400 seconds; not for `pending`.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86_400)]
    secs: Option<u64>,
}

const MAX_DEDUPE_KEY: usize = 200;
const DEDUPE_SECS: std::ops::RangeInclusive<u64> = 1..=86_400;

impl DedupeRequest {
    /// The queue's dedupe, or the 422 naming the field.
    pub(super) fn check(self) -> Result<nightshift_queue::Dedupe, ApiError> {
        use nightshift_queue::{Dedupe, DedupeMode};
        let n = self.key.chars().count();
        if n == 0 || n > MAX_DEDUPE_KEY {
            return Err(ApiError::invalid("dedupe.key", "must be 1 to 200 characters"));
        }
        if !self.key.chars().all(nightshift_common::text::printable) {
            return Err(ApiError::invalid(
                "dedupe.key",
                "must be printable (no control or format characters)",
            ));
        }
        let mode = match self.mode.as_str() {
            "pending" => DedupeMode::Pending,
            "throttle" => DedupeMode::Throttle,
            "debounce" => DedupeMode::Debounce,
            _ => {
                return Err(ApiError::invalid(
                    "dedupe.mode",
                    "must be pending, throttle or debounce",
                ));
            }
        };
        let secs = match (mode, self.secs) {
            (DedupeMode::Pending, None) => 0,
            (DedupeMode::Pending, Some(_)) => {
                return Err(ApiError::invalid("dedupe.secs", "pending has no window"));
            }
            (_, Some(s)) if DEDUPE_SECS.contains(&s) => s,
            (_, _) => {
                return Err(ApiError::invalid(
                    "dedupe.secs",
                    "throttle and debounce need a window of 1 to 86,400 seconds",
                ));
            }
        };
        Ok(Dedupe {
            key: self.key,
            mode,
            window: std::time::Duration::from_secs(secs),
        })
    }
}

fn empty_object() -> Value {
    json!({})
}

/// A client's idempotency key (`field` names where it came from), if it gave one.
pub(crate) fn idempotency_key(raw: Option<&[u8]>, field: &str) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let bad = |m: &str| ApiError::invalid(field, m);
    let key = raw.trim_ascii();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(bad("must be 1 to 255 characters"));
    }
    if !key.iter().all(u8::is_ascii_graphic) {
        return Err(bad("must be visible ASCII without spaces"));
    }
    Ok(Some(key.iter().map(|&b| char::from(b)).collect()))
}

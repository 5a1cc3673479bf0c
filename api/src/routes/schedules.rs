//! Operators' schedule controls, all under the `admin` scope: list, pause, resume, run now.
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use nightshift_catalog::schedules::{Schedule, ledger};
use nightshift_common::auth::Scope;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    openapi::{Accepted, Errors},
    operations::{Actor, ScheduleAction},
};

#[derive(Serialize, ToSchema)]
pub struct Schedules {
    schedules: Vec<ScheduleView>,
}

#[derive(Serialize, ToSchema)]
pub struct ScheduleView {
    name: String,
    /// With seconds: sec min hour day-of-month month day-of-week.
    cron: String,
    time_zone: String,
    kind: String,
    /// skip or run_once.
    misfire: String,
    paused: bool,
    next_fire: Option<DateTime<Utc>>,
    last_tick: Option<Tick>,
}

#[derive(Serialize, ToSchema)]
pub struct Tick {
    tick: DateTime<Utc>,
    /// fired, fired_late, coalesced, skipped or overlapped.
    outcome: String,
    job_id: Option<uuid::Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct PausedState {
    name: String,
    paused: bool,
}

fn find<'a>(state: &'a AppState, name: &str) -> Result<&'a Schedule, ApiError> {
    state
        .schedules
        .iter()
        .find(|s| s.name == name)
        .ok_or(ApiError::NotFound("schedule"))
}

/// Every schedule with its next fire time and last tick (scope `admin`).
#[utoipa::path(
    get, path = "/v1/schedules", tag = "admin",
    responses((status = 200, description = "The schedules", body = Schedules), Errors),
    security(("bearer" = ["admin"]))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Schedules>, ApiError> {
    caller.require(Scope::Admin)?;
    let mut out = Vec::with_capacity(state.schedules.len());
    for s in state.schedules.iter() {
        let last = ledger::latest(&state.db, &s.name).await?;
        out.push(ScheduleView {
            name: s.name.clone(),
            cron: s.cron.to_string(),
            time_zone: s.tz.name().to_string(),
            kind: s.kind.clone(),
            misfire: format!("{:?}", s.misfire).to_lowercase(),
            paused: ledger::is_paused(&state.db, &s.name).await?,
            next_fire: s.next_tick(nightshift_queue::clock::now()),
            last_tick: last.map(|(tick, outcome, job_id)| Tick { tick, outcome, job_id }),
        });
    }
    Ok(Json(Schedules { schedules: out }))
}

async fn set_paused(
    state: &AppState,
    caller: &Caller,
    name: &str,
    paused: bool,
) -> Result<Json<PausedState>, ApiError> {
    caller.require(Scope::Admin)?;
    let s = find(state, name)?;
    let action = if paused {
        ScheduleAction::Pause
    } else {
        ScheduleAction::Resume
    };
    Actor::api(caller.subject())
        .schedule(&state.db, &state.queues, s, action)
        .await?;
    Ok(Json(PausedState {
        name: s.name.clone(),
        paused,
    }))
}

/// Pause a schedule: its ticks are recorded as `paused` and enqueue nothing (scope `admin`).
#[utoipa::path(
    post, path = "/v1/schedules/{name}/pause", tag = "admin",
    params(("name" = String, Path, description = "The schedule")),
    responses((status = 200, description = "Paused", body = PausedState), Errors),
    security(("bearer" = ["admin"]))
)]
pub async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<PausedState>, ApiError> {
    set_paused(&state, &caller, &name, true).await
}

#[utoipa::path(
    post, path = "/v1/schedules/{name}/resume", tag = "admin",
    params(("name" = String, Path, description = "The schedule")),
    responses((status = 200, description = "Resumed", body = PausedState), Errors),
    security(("bearer" = ["admin"]))
)]
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<PausedState>, ApiError> {
    set_paused(&state, &caller, &name, false).await
}

/// Enqueue the schedule's job now, outside its ticks (scope `admin`).
#[utoipa::path(
    post, path = "/v1/schedules/{name}/run", tag = "admin",
    params(("name" = String, Path, description = "The schedule")),
    responses((status = 202, description = "Queued", body = Accepted), Errors),
    security(("bearer" = ["admin"]))
)]
pub async fn run_now(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    caller.require(Scope::Admin)?;
    let s = find(&state, &name)?;
    let job = Actor::api(caller.subject())
        .schedule(&state.db, &state.queues, s, ScheduleAction::Run)
        .await?;
    let id = job.ok_or_else(|| ApiError::Internal("a run made no job".into()))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            id,
            deduplicated: false,
        }),
    ))
}

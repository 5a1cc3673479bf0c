//! Operators' schedule controls, all under the `admin` scope: list, pause, resume, run now.
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use chrono::Utc;
use nightshift_common::auth::Scope;
use nightshift_scheduler::{Schedule, ledger};
use serde_json::{Value, json};

use crate::{AppState, auth::Caller, error::ApiError};

fn find<'a>(state: &'a AppState, name: &str) -> Result<&'a Schedule, ApiError> {
    state
        .schedules
        .iter()
        .find(|s| s.name == name)
        .ok_or(ApiError::NotFound("schedule"))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Admin)?;
    let mut out = Vec::with_capacity(state.schedules.len());
    for s in state.schedules.iter() {
        let last = ledger::latest(&state.db, &s.name).await?;
        out.push(json!({
            "name": s.name,
            "cron": s.cron.to_string(),
            "time_zone": s.tz.name(),
            "kind": s.kind,
            "misfire": format!("{:?}", s.misfire).to_lowercase(),
            "paused": ledger::is_paused(&state.db, &s.name).await?,
            "next_fire": s.next_tick(Utc::now()),
            "last_tick": last.map(|(tick, outcome, job)| json!({ "tick": tick, "outcome": outcome, "job_id": job })),
        }));
    }
    Ok(Json(json!({ "schedules": out })))
}

async fn set_paused(state: &AppState, caller: &Caller, name: &str, paused: bool) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Admin)?;
    let s = find(state, name)?;
    ledger::set_paused(&state.db, &s.name, paused, caller.subject()).await?;
    tracing::info!(schedule = %s.name, paused, by = %caller.subject(), "schedule state changed");
    Ok(Json(json!({ "name": s.name, "paused": paused })))
}

pub async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &caller, &name, true).await
}

pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_paused(&state, &caller, &name, false).await
}

pub async fn run_now(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Scope::Admin)?;
    let s = find(&state, &name)?;
    let id = nightshift_scheduler::run_now(&state.queues, s)
        .await
        .map_err(|e| match e {
            nightshift_scheduler::SchedulerError::Redis(q) => ApiError::from(q),
            other => ApiError::Internal(Box::new(other)),
        })?;
    tracing::info!(schedule = %s.name, job.id = %id, by = %caller.subject(), "schedule run now");
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))))
}

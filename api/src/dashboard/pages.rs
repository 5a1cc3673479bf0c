// Over 400 lines: one handler per dashboard page, each a read and a template; split by page it would scatter one pattern.
//! The dashboard's pages: reads only, nothing here changes state.
use axum::{
    Json,
    extract::{Path, Query, State},
    response::Html,
};
use chrono::{DateTime, TimeZone, Utc};
use nightshift_queue::{JobState, list_workers};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{DashError, Operator, data, render, search};
use crate::{ApiError, AppState};

/// Workers whose last heartbeat is older than this are gone.
const WORKER_MAX_AGE_MS: i64 = 60_000;

/// The context every page shares: who is signed in, the form token, the active tab, and the
/// outcome of the action that led here.
fn page(op: &Operator, nav: &str, done: Option<&str>, mut ctx: Value) -> Value {
    ctx["operator"] = json!(op.subject);
    ctx["csrf"] = json!(op.csrf);
    ctx["nav"] = json!(nav);
    ctx["done"] = json!(done.and_then(done_message));
    ctx
}

/// Messages after an action come from this fixed list, never from the URL, so a crafted link
/// cannot put words on the page.
fn done_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "retry" => "Retried: the job is queued again.",
        "cancel" => "Cancelled.",
        "discard" => "Discarded: the job is gone from the queue (its history stays).",
        "pause" => "Paused: no new job starts; running jobs finish.",
        "resume" => "Resumed.",
        "run" => "Queued: the schedule's job will run now.",
        "bulk" => "Done: see the counts below.",
        _ => return None,
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
}

pub fn login_page(message: Option<&str>) -> Html<String> {
    render("login.html", json!({ "message": message })).unwrap_or_else(|_| Html("login".into()))
}

pub async fn login() -> Html<String> {
    login_page(None)
}

pub async fn overview(State(state): State<AppState>, op: Operator) -> Result<Html<String>, DashError> {
    let overview = data::overview(&state).await?;
    render(
        "overview.html",
        page(&op, "overview", None, json!({ "overview": overview })),
    )
}

/// What the overview's script polls: counts, the hour's series and latencies.
pub async fn overview_json(State(state): State<AppState>, _op: Operator) -> Result<Json<data::Overview>, DashError> {
    Ok(Json(data::overview(&state).await?))
}

pub async fn jobs(
    State(state): State<AppState>,
    op: Operator,
    Query(filter): Query<search::JobFilter>,
) -> Result<Html<String>, DashError> {
    let rows = search::search_jobs(&state.db, &filter).await?;
    // A full page may have more behind it: the next page starts after its last row.
    let next = (rows.len() as i64 == data::PAGE)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    let kinds: Vec<&str> = nightshift_catalog::catalog().keys().copied().collect();
    let queues = nightshift_catalog::queue_names();
    let states: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
    render(
        "jobs.html",
        page(
            &op,
            "jobs",
            None,
            json!({ "jobs": rows, "filter": filter, "next": next, "kinds": kinds, "queues": queues, "states": states }),
        ),
    )
}

pub async fn job(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Html<String>, DashError> {
    let uuid = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("job"))?;
    let id = uuid.to_string();
    let mut detail = search::job(&state.db, uuid).await?;
    // The live record, when Redis still has it: fresher than the history. The history names
    // the job's queue; only a job not on record yet is looked for in every queue.
    let mut live = None;
    let recorded = detail.as_ref().and_then(|d| state.queues.get(&d.queue));
    for q in recorded
        .into_iter()
        .chain(state.queues.iter().filter(|_| recorded.is_none()))
    {
        if let Some(rec) = q.inspect(&id).await? {
            live = Some(rec);
            break;
        }
    }
    if detail.is_none() && live.is_none() {
        return Err(ApiError::NotFound("job").into());
    }
    let kind = detail
        .as_ref()
        .map(|d| d.kind.clone())
        .or_else(|| live.as_ref().map(|l| l.kind.clone()))
        .unwrap_or_default();
    let declared = nightshift_catalog::find(&kind).map_or(&[][..], |s| s.sensitive);
    let mut payload = match (&detail, &live) {
        (Some(d), _) if d.payload.is_some() => d.payload.clone(),
        (_, Some(l)) => serde_json::from_str::<Value>(&l.payload).ok(),
        _ => None,
    };
    if let Some(p) = payload.as_mut() {
        search::mask(p, declared);
    }
    // Only the masked copy reaches the template.
    if let Some(d) = detail.as_mut() {
        d.payload = None;
    }
    if let Some(l) = live.as_mut() {
        l.payload.clear();
    }
    let payload = payload.map(|p| serde_json::to_string_pretty(&p).unwrap_or_default());
    let result = match (&live, &detail) {
        (Some(l), _) if l.result.is_some() => l.result.clone(),
        (_, Some(d)) => d
            .result
            .as_ref()
            .map(|r| serde_json::to_string_pretty(r).unwrap_or_default()),
        _ => None,
    };
    let queue = live
        .as_ref()
        .map(|l| l.queue.clone())
        .or_else(|| detail.as_ref().map(|d| d.queue.clone()));
    let trace = live.as_ref().and_then(|l| l.trace_parent.as_deref()).and_then(trace_of);
    render(
        "job.html",
        page(
            &op,
            "jobs",
            done.done.as_deref(),
            json!({ "id": id, "job": detail, "live": live, "payload": payload, "result": result, "queue": queue,
                    "trace": trace }),
        ),
    )
}

/// The trace a job was created in, from its `traceparent`: its id, and a link when
/// `NIGHTSHIFT_TRACE_URL` (a template with `{trace_id}`) names the tracing UI.
fn trace_of(traceparent: &str) -> Option<serde_json::Value> {
    static TEMPLATE: std::sync::LazyLock<Option<String>> = std::sync::LazyLock::new(|| {
        std::env::var("NIGHTSHIFT_TRACE_URL")
            .ok()
            .filter(|t| t.contains("{trace_id}"))
    });
    let id = traceparent
        .split('-')
        .nth(1)
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))?;
    let url = TEMPLATE.as_ref().map(|t| t.replace("{trace_id}", id));
    Some(json!({ "id": id, "url": url }))
}

#[derive(Debug, Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    offset: Option<usize>,
    #[serde(default)]
    done: Option<String>,
}

/// How many busy keys, groups and rate-held jobs the queue page shows (the busiest first).
const FLOW_SAMPLE: usize = 20;

pub async fn queue(
    State(state): State<AppState>,
    op: Operator,
    Path(name): Path<String>,
    Query(q): Query<QueueQuery>,
) -> Result<Html<String>, DashError> {
    let queue = state.queues.get(&name).ok_or(ApiError::NotFound("queue"))?;
    let listed = match q.state.as_deref().unwrap_or("dead") {
        s @ ("scheduled" | "queued" | "running" | "retrying" | "dead") => s.parse::<JobState>().ok(),
        _ => None,
    }
    .ok_or_else(|| ApiError::invalid("state", "must be scheduled, queued, running, retrying or dead"))?;
    let offset = q.offset.unwrap_or(0);
    let counts = queue.counts().await?;
    let flow = queue.flow_view(FLOW_SAMPLE).await?;
    let jobs = queue.list(listed, offset, data::PAGE as usize).await?;
    let more = jobs.len() == data::PAGE as usize;
    render(
        "queue.html",
        page(
            &op,
            "overview",
            q.done.as_deref(),
            json!({
                "name": name, "counts": counts, "listed": listed.as_str(), "jobs": jobs, "offset": offset,
                "flow": flow,
                "next_offset": more.then(|| offset.saturating_add(data::PAGE as usize)),
                "prev_offset": (offset > 0).then(|| offset.saturating_sub(data::PAGE as usize)),
            }),
        ),
    )
}

/// The confirmation before a bulk action on a queue's dead set: how many jobs it will touch.
pub async fn confirm_dead(
    State(state): State<AppState>,
    op: Operator,
    Path((name, action)): Path<(String, String)>,
) -> Result<Html<String>, DashError> {
    let queue = state.queues.get(&name).ok_or(ApiError::NotFound("queue"))?;
    if !matches!(action.as_str(), "retry" | "discard") {
        return Err(ApiError::NotFound("action").into());
    }
    let dead = queue.counts().await?.dead;
    render(
        "confirm.html",
        page(
            &op,
            "overview",
            None,
            json!({ "name": name, "action": action, "dead": dead }),
        ),
    )
}

pub async fn workers(State(state): State<AppState>, op: Operator) -> Result<Html<String>, DashError> {
    let mut conn = state.redis.clone();
    let workers = list_workers(&mut conn, &state.key_prefix, WORKER_MAX_AGE_MS).await?;
    render(
        "workers.html",
        page(&op, "workers", None, json!({ "workers": workers })),
    )
}

pub async fn schedules(
    State(state): State<AppState>,
    op: Operator,
    Query(done): Query<Done>,
) -> Result<Html<String>, DashError> {
    use nightshift_catalog::schedules::ledger;
    let mut rows = Vec::with_capacity(state.schedules.len());
    for s in state.schedules.iter() {
        let last = ledger::latest(&state.db, &s.name).await?;
        rows.push(json!({
            "name": s.name,
            "cron": s.cron.to_string(),
            "time_zone": s.tz.name(),
            "kind": s.kind,
            "misfire": format!("{:?}", s.misfire).to_lowercase(),
            "paused": ledger::is_paused(&state.db, &s.name).await?,
            "next_fire": s.next_tick(nightshift_queue::clock::now()),
            "last": last.map(|(tick, outcome, job_id)| json!({ "tick": tick, "outcome": outcome, "job_id": job_id })),
            "misfires": data::misfires(&state.db, &s.name).await?,
        }));
    }
    render(
        "schedules.html",
        page(&op, "schedules", done.done.as_deref(), json!({ "schedules": rows })),
    )
}

/// Nightly runs with their outcome, and recent batches with their progress.
/// The 50 newest batches, with their state.
async fn recent_batches(state: &AppState) -> Result<Vec<Value>, DashError> {
    let filter = nightshift_common::batches::ListFilter {
        limit: 50,
        ..Default::default()
    };
    Ok(nightshift_common::batches::list(&state.db, &filter)
        .await?
        .into_iter()
        .map(|b| {
            let state = b.state();
            let mut v = serde_json::to_value(b).unwrap_or_default();
            v["state"] = state.into();
            v
        })
        .collect())
}

/// The batches page's rows, polled by its live bars.
pub async fn batches_json(State(state): State<AppState>, _op: Operator) -> Result<Json<Vec<Value>>, DashError> {
    Ok(Json(recent_batches(&state).await?))
}

/// A job's state and last progress report, polled by its page's live bar: Redis's while it
/// holds the job, then the history's state.
pub async fn job_json(
    State(state): State<AppState>,
    _op: Operator,
    Path(id): Path<String>,
) -> Result<Json<Value>, DashError> {
    let uuid = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("job"))?;
    let id = uuid.to_string();
    for q in state.queues.iter() {
        if let Some(rec) = q.inspect(&id).await? {
            return Ok(Json(json!({ "state": rec.state, "progress": rec.progress })));
        }
    }
    let job = search::job(&state.db, uuid).await?.ok_or(ApiError::NotFound("job"))?;
    Ok(Json(json!({ "state": job.state, "progress": null })))
}

pub async fn batches(State(state): State<AppState>, op: Operator) -> Result<Html<String>, DashError> {
    let batches = recent_batches(&state).await?;
    let runs = data::nightly_runs(&state.db, 20).await?;
    render(
        "batches.html",
        page(&op, "batches", None, json!({ "batches": batches, "runs": runs })),
    )
}

pub async fn backups(State(state): State<AppState>, op: Operator) -> Result<Html<String>, DashError> {
    let rows = data::backups(&state.db, 100).await?;
    render("backups.html", page(&op, "backups", None, json!({ "backups": rows })))
}

/// Key ids, states and dates only: the sealed secrets are never read here.
pub async fn keys(State(state): State<AppState>, op: Operator) -> Result<Html<String>, DashError> {
    let keys = match state.keyring {
        None => None,
        Some(_) => Some(
            nightshift_common::keyring::list(&state.db)
                .await
                .map_err(|e| ApiError::Internal(e.to_string().into()))?
                .into_iter()
                .map(|(kid, status, created_at, retire_after)| {
                    json!({ "kid": kid, "status": status, "created_at": created_at, "retire_after": retire_after })
                })
                .collect::<Vec<_>>(),
        ),
    };
    render(
        "keys.html",
        page(
            &op,
            "keys",
            None,
            json!({ "keys": keys, "signing_kid": state.keys.signing_kid() }),
        ),
    )
}

/// `2026-11-30T10:15:02.123Z` as `2026-11-30 10:15:02 UTC`; anything else unchanged.
pub fn format_time(value: String) -> String {
    match DateTime::parse_from_rfc3339(&value) {
        Ok(t) => t.with_timezone(&Utc).format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => value,
    }
}

pub fn format_epoch_ms(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// A duration in milliseconds in the unit a person reads at a glance: `0.42 ms`, `12.3 ms`,
/// `4.2 s`, `9 min 57 s`, `2 h 5 min` (never `597041.0 ms`).
pub fn format_duration_ms(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "–".into();
    }
    let secs = ms / 1000.0;
    let whole = secs.round() as u64;
    match ms {
        ms if ms < 1.0 => format!("{ms:.2} ms"),
        ms if ms < 100.0 => format!("{ms:.1} ms"),
        ms if ms < 1000.0 => format!("{ms:.0} ms"),
        _ if secs < 59.95 => format!("{secs:.1} s"),
        _ if whole < 3600 => format!("{} min {} s", whole / 60, whole % 60),
        _ => format!("{} h {} min", whole / 3600, whole % 3600 / 60),
    }
}

pub fn format_bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::format_duration_ms as d;

    #[test]
    fn durations_read_in_the_unit_that_fits() {
        assert_eq!(d(0.42), "0.42 ms");
        assert_eq!(d(12.34), "12.3 ms");
        assert_eq!(d(512.0), "512 ms");
        assert_eq!(d(4_210.0), "4.2 s");
        assert_eq!(d(59_960.0), "1 min 0 s");
        assert_eq!(d(597_041.0), "9 min 57 s");
        assert_eq!(d(7_500_000.0), "2 h 5 min");
        assert_eq!(d(f64::NAN), "–");
        assert_eq!(d(-1.0), "–");
    }
}

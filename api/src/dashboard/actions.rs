//! Everything the dashboard changes. Each action checks the session and its CSRF token, does
//! the same thing the CLI and the admin API do, and writes an audit row, refused ones included.
use std::net::SocketAddr;

use axum::{
    Extension, Form,
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Redirect, Response},
};
use nightshift_common::audit as audit_log;
use nightshift_queue::JobState;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{DashError, Operator, session};
use crate::{ApiError, AppState};

/// Records an action; a failed write is loud in the logs but does not undo what happened.
pub async fn audit(state: &AppState, actor: &str, action: &str, target: &str, mut detail: Value) {
    detail["via"] = json!("dashboard");
    if let Err(e) = audit_log::record(&state.db, actor, action, target, detail).await {
        tracing::error!(error = %e, action, target, "audit log write failed");
    }
}

/// Runs an action after the CSRF check, and audits it with its outcome either way.
async fn audited<T>(
    state: &AppState,
    op: &Operator,
    csrf: &str,
    action: &str,
    target: &str,
    run: impl Future<Output = Result<T, DashError>>,
) -> Result<T, DashError> {
    let result = match op.check_csrf(csrf) {
        Ok(()) => run.await,
        Err(e) => Err(e),
    };
    let outcome = match &result {
        Ok(_) => json!({ "outcome": "ok" }),
        Err(e) => json!({ "outcome": "refused", "reason": e.to_string() }),
    };
    audit(state, &op.actor(), action, target, outcome).await;
    result
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
}

pub async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    // A locked-out address gets no more tokens verified.
    if let Some(Extension(ConnectInfo(addr))) = &peer
        && let Err(limited) =
            crate::auth::not_locked_out(&state, &state.limits.auth_failures, &addr.ip().to_string()).await
    {
        return limited.into_response();
    }
    let claims = match session::admit(&state, &form.token) {
        Ok(c) => c,
        Err(e) => {
            audit(
                &state,
                "anonymous",
                "dashboard.login",
                "dashboard",
                json!({ "outcome": "refused" }),
            )
            .await;
            // Failed sign-ins count against the same per-IP budget as failed API tokens.
            if let Some(Extension(ConnectInfo(addr))) = peer
                && let Err(limited) =
                    crate::auth::within(&state, &state.limits.auth_failures, &addr.ip().to_string()).await
            {
                return limited.into_response();
            }
            return e.into_response();
        }
    };
    match session::start(&state, &claims, &headers).await {
        Ok(cookie) => {
            audit(
                &state,
                &format!("dashboard:{}", claims.sub),
                "dashboard.login",
                "dashboard",
                json!({ "outcome": "ok" }),
            )
            .await;
            ([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard")).into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, DashError> {
    let cookie = audited(&state, &op, &form.csrf, "dashboard.logout", "dashboard", async {
        session::end(&state, &headers).await
    })
    .await?;
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard/login")).into_response())
}

/// Ends every operator's session, this one included: after a token leak, or when an operator
/// leaves. Sessions started from now on are unaffected.
pub async fn logout_everywhere(
    State(state): State<AppState>,
    op: Operator,
    Form(form): Form<CsrfForm>,
) -> Result<Response, DashError> {
    audited(
        &state,
        &op,
        &form.csrf,
        "dashboard.logout_everywhere",
        "dashboard",
        async { session::end_all(&state).await },
    )
    .await?;
    Ok(Redirect::to("/dashboard/login").into_response())
}

#[derive(Deserialize)]
pub struct JobForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    queue: String,
}

pub async fn job_action(
    State(state): State<AppState>,
    op: Operator,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<JobForm>,
) -> Result<Redirect, DashError> {
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::NotFound("job"))?
        .to_string();
    if !matches!(action.as_str(), "retry" | "cancel" | "discard") {
        return Err(ApiError::NotFound("action").into());
    }
    let queue = state
        .queues
        .get(&form.queue)
        .ok_or_else(|| ApiError::invalid("queue", "is not a known queue"))?;
    audited(&state, &op, &form.csrf, &format!("job.{action}"), &id, async {
        match action.as_str() {
            "retry" => queue.retry(&id).await.map(drop)?,
            "cancel" => queue.cancel(&id).await.map(drop)?,
            _ => queue.discard(&id).await?,
        }
        tracing::info!(job.id = %id, %action, by = %op.subject, "dashboard job action");
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&format!("/dashboard/jobs/{id}?done={action}")))
}

pub async fn queue_action(
    State(state): State<AppState>,
    op: Operator,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, DashError> {
    let queue = state.queues.get(&name).ok_or(ApiError::NotFound("queue"))?;
    if !matches!(action.as_str(), "pause" | "resume") {
        return Err(ApiError::NotFound("action").into());
    }
    audited(&state, &op, &form.csrf, &format!("queue.{action}"), &name, async {
        if action == "pause" {
            queue.pause().await?;
        } else {
            queue.resume().await?;
        }
        tracing::info!(queue = %name, %action, by = %op.subject, "dashboard queue action");
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&format!("/dashboard/queues/{name}?done={action}")))
}

#[derive(Deserialize)]
pub struct BulkForm {
    #[serde(default)]
    csrf: String,
    /// The dead count the operator confirmed: at most this many jobs are touched, so jobs that
    /// die again while the action runs are not retried in a loop.
    #[serde(default)]
    expected: u64,
}

/// Retries or discards a queue's whole dead set, after the confirmation page.
pub async fn dead_action(
    State(state): State<AppState>,
    op: Operator,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<BulkForm>,
) -> Result<Redirect, DashError> {
    const BATCH: usize = 500;
    let queue = state.queues.get(&name).ok_or(ApiError::NotFound("queue"))?;
    if !matches!(action.as_str(), "retry" | "discard") {
        return Err(ApiError::NotFound("action").into());
    }
    let target = format!("{name}/dead");
    audited(&state, &op, &form.csrf, &format!("dead.{action}_all"), &target, async {
        // Bounded by the jobs looked at, not the jobs moved: a job that cannot be moved stays
        // at the head of the dead set and must not make this loop spin.
        let (mut seen, mut done) = (0u64, 0u64);
        while seen < form.expected {
            let take = BATCH.min((form.expected - seen) as usize);
            let batch = queue.list(JobState::Dead, 0, take).await?;
            if batch.is_empty() {
                break;
            }
            for job in &batch {
                seen += 1;
                // A job another operator just moved is no reason to stop the rest.
                let moved = if action == "retry" {
                    queue.retry(&job.id).await.map(drop)
                } else {
                    queue.discard(&job.id).await
                };
                match moved {
                    Ok(()) => done += 1,
                    Err(
                        nightshift_queue::QueueError::NotFound(_)
                        | nightshift_queue::QueueError::InvalidTransition { .. },
                    ) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        tracing::info!(queue = %name, %action, jobs = done, by = %op.subject, "dashboard bulk action on the dead set");
        Ok(done)
    })
    .await?;
    Ok(Redirect::to(&format!("/dashboard/queues/{name}?state=dead&done=bulk")))
}

pub async fn schedule_action(
    State(state): State<AppState>,
    op: Operator,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, DashError> {
    use nightshift_scheduler::ledger;
    let schedule = state
        .schedules
        .iter()
        .find(|s| s.name == name)
        .ok_or(ApiError::NotFound("schedule"))?;
    if !matches!(action.as_str(), "pause" | "resume" | "run") {
        return Err(ApiError::NotFound("action").into());
    }
    audited(&state, &op, &form.csrf, &format!("schedule.{action}"), &name, async {
        match action.as_str() {
            "run" => {
                let id = nightshift_scheduler::run_now(&state.queues, schedule)
                    .await
                    .map_err(|e| match e {
                        nightshift_scheduler::SchedulerError::Redis(q) => ApiError::from(q),
                        other => ApiError::Internal(other.to_string().into()),
                    })?;
                tracing::info!(schedule = %name, job.id = %id, by = %op.subject, "dashboard: schedule run now");
            }
            _ => ledger::set_paused(&state.db, &schedule.name, action == "pause", &op.actor()).await?,
        }
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&format!("/dashboard/schedules?done={action}")))
}

//! Everything the dashboard changes. Each action checks the session and its CSRF token, then
//! hands over to `operations`, which does the same thing the CLI and the admin API do and
//! writes the audit row, refused ones included.
use std::net::SocketAddr;

use axum::{
    Extension, Form,
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{DashError, Operator, session};
use crate::{
    ApiError, AppState,
    operations::{Actor, DeadAction, JobAction, QueueAction, ScheduleAction},
};

/// Records what the dashboard saw happen or refused.
pub async fn audit(state: &AppState, actor: &str, action: &str, target: &str, detail: Value) {
    Actor::dashboard(actor.to_string())
        .record(&state.db, action, target, detail)
        .await;
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
    Actor::dashboard(op.actor())
        .audited(&state.db, action, target, async {
            op.check_csrf(csrf)?;
            run.await
        })
        .await
}

/// The CSRF check of an operator action, whose refusal is audited under the action's name;
/// the action itself is audited by `operations`.
async fn checked(state: &AppState, op: &Operator, csrf: &str, action: &str, target: &str) -> Result<Actor, DashError> {
    let actor = Actor::dashboard(op.actor());
    if let Err(e) = op.check_csrf(csrf) {
        let detail = json!({ "outcome": "refused", "reason": e.to_string() });
        actor.record(&state.db, action, target, detail).await;
        return Err(e);
    }
    Ok(actor)
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
    let action: JobAction = action.parse().map_err(|_| ApiError::NotFound("action"))?;
    let queue = state
        .queues
        .get(&form.queue)
        .ok_or_else(|| ApiError::invalid("queue", "is not a known queue"))?;
    let actor = checked(&state, &op, &form.csrf, &format!("job.{action}"), &id).await?;
    actor.job(&state.db, queue, &id, action).await?;
    Ok(Redirect::to(&format!("/dashboard/jobs/{id}?done={action}")))
}

pub async fn queue_action(
    State(state): State<AppState>,
    op: Operator,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, DashError> {
    let queue = state.queues.get(&name).ok_or(ApiError::NotFound("queue"))?;
    let action: QueueAction = action.parse().map_err(|_| ApiError::NotFound("action"))?;
    let actor = checked(&state, &op, &form.csrf, &format!("queue.{action}"), &name).await?;
    actor.queue(&state.db, queue, action).await?;
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
    let queue = state.queues.get(&name).ok_or(ApiError::NotFound("queue"))?;
    let action: DeadAction = action.parse().map_err(|_| ApiError::NotFound("action"))?;
    let target = format!("{name}/dead");
    let actor = checked(&state, &op, &form.csrf, &format!("dead.{action}_all"), &target).await?;
    actor.dead(&state.db, queue, action, form.expected).await?;
    Ok(Redirect::to(&format!("/dashboard/queues/{name}?state=dead&done=bulk")))
}

pub async fn schedule_action(
    State(state): State<AppState>,
    op: Operator,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Redirect, DashError> {
    let schedule = state
        .schedules
        .iter()
        .find(|s| s.name == name)
        .ok_or(ApiError::NotFound("schedule"))?;
    let action: ScheduleAction = action.parse().map_err(|_| ApiError::NotFound("action"))?;
    let actor = checked(&state, &op, &form.csrf, &format!("schedule.{action}"), &name).await?;
    actor.schedule(&state.db, &state.queues, schedule, action).await?;
    Ok(Redirect::to(&format!("/dashboard/schedules?done={action}")))
}

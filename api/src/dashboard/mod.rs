//! The operators' dashboard under `/dashboard`: server-rendered pages (minijinja, HTML
//! auto-escaping on every template), one small script for live refresh and charts, every asset
//! embedded in the binary. Sessions and CSRF are in `session`, reads in `data`, and every
//! action is in `actions`, written to the audit log whether it was allowed or refused.
use std::sync::OnceLock;

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use minijinja::Environment;
use serde_json::json;

use crate::{ApiError, AppState};

mod actions;
mod data;
mod pages;
mod search;
mod session;

pub use session::Operator;

/// Why a dashboard request did not get its page. Beyond the dashboard's own reasons, the
/// API's errors (and so its classification of Redis and PostgreSQL failures) as a page.
#[derive(Debug, thiserror::Error)]
pub enum DashError {
    #[error("signed out")]
    SignedOut,
    #[error("{0}")]
    Login(&'static str),
    #[error("the form's CSRF token is missing or stale; reload the page and try again")]
    Csrf,
    #[error("cross-origin requests may not change anything here")]
    CrossOrigin,
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<sqlx::Error> for DashError {
    fn from(e: sqlx::Error) -> Self {
        DashError::Api(e.into())
    }
}

impl From<crate::operations::OpError> for DashError {
    fn from(e: crate::operations::OpError) -> Self {
        DashError::Api(e.into())
    }
}

impl From<nightshift_queue::QueueError> for DashError {
    fn from(e: nightshift_queue::QueueError) -> Self {
        DashError::Api(e.into())
    }
}

fn redis_error(e: redis::RedisError) -> DashError {
    nightshift_queue::QueueError::from(e).into()
}

impl IntoResponse for DashError {
    fn into_response(self) -> Response {
        let status = match &self {
            DashError::SignedOut => return Redirect::to("/dashboard/login").into_response(),
            DashError::Login(message) => {
                return (StatusCode::UNAUTHORIZED, pages::login_page(Some(message))).into_response();
            }
            DashError::Csrf | DashError::CrossOrigin => StatusCode::FORBIDDEN,
            DashError::Api(e) => {
                if let ApiError::Internal(cause) = e {
                    tracing::error!(error = %cause, "dashboard: internal error");
                }
                e.status_code()
            }
        };
        // A page names the offending field, as the API's JSON body does.
        let message = match &self {
            DashError::Api(ApiError::Invalid { field, message }) => format!("{field}: {message}"),
            other => other.to_string(),
        };
        let body = render("error.html", json!({ "status": status.as_u16(), "message": message }))
            .unwrap_or_else(|_| Html("error".into()));
        (status, body).into_response()
    }
}

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // `.html` names turn auto-escaping on: payloads and errors are text wherever shown.
        for (name, source) in [
            ("base.html", include_str!("templates/base.html")),
            ("error.html", include_str!("templates/error.html")),
            ("login.html", include_str!("templates/login.html")),
            ("overview.html", include_str!("templates/overview.html")),
            ("jobs.html", include_str!("templates/jobs.html")),
            ("job.html", include_str!("templates/job.html")),
            ("queue.html", include_str!("templates/queue.html")),
            ("confirm.html", include_str!("templates/confirm.html")),
            ("workers.html", include_str!("templates/workers.html")),
            ("schedules.html", include_str!("templates/schedules.html")),
            ("backups.html", include_str!("templates/backups.html")),
            ("batches.html", include_str!("templates/batches.html")),
            ("keys.html", include_str!("templates/keys.html")),
        ] {
            env.add_template(name, source).expect("dashboard template parses");
        }
        env.add_filter("ts", pages::format_time);
        env.add_filter("ms", pages::format_epoch_ms);
        env.add_filter("bytes", pages::format_bytes);
        env.add_filter("duration", pages::format_duration_ms);
        env
    })
}

fn render(name: &str, ctx: serde_json::Value) -> Result<Html<String>, DashError> {
    templates()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map(Html)
        .map_err(|e| ApiError::Internal(format!("template {name}: {e:#}").into()).into())
}

/// The embedded assets, immutable for a build.
async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (body, mime) = match name.as_str() {
        "app.js" => (include_str!("assets/app.js"), "text/javascript; charset=utf-8"),
        "app.css" => (include_str!("assets/app.css"), "text/css; charset=utf-8"),
        "icon.svg" => (include_str!("assets/icon.svg"), "image/svg+xml"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}

/// Refuses state-changing requests from other origins before any handler runs, and records
/// the refusal: an attack on an operator's browser is itself worth an audit row.
async fn guard_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() == axum::http::Method::POST && !session::same_origin(req.headers()) {
        let path = req.uri().path().to_string();
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        tracing::warn!(
            path = %nightshift_common::telemetry::untrusted(&path),
            origin = %nightshift_common::telemetry::untrusted(origin.as_deref().unwrap_or("")),
            "dashboard: cross-origin request refused"
        );
        actions::audit(
            &state,
            "anonymous",
            "dashboard.refused",
            &path,
            json!({ "reason": "cross-origin", "origin": origin }),
        )
        .await;
        return DashError::CrossOrigin.into_response();
    }
    next.run(req).await
}

/// Scripts, styles and forms from this origin only: a payload that slipped past escaping
/// would still not run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    use tower_http::set_header::SetResponseHeaderLayer;
    Router::new()
        .route("/dashboard", get(pages::overview))
        .route("/dashboard/login", get(pages::login).post(actions::login))
        .route("/dashboard/logout", post(actions::logout))
        .route("/dashboard/logout-everywhere", post(actions::logout_everywhere))
        .route("/dashboard/api/overview", get(pages::overview_json))
        .route("/dashboard/api/jobs/{id}", get(pages::job_json))
        .route("/dashboard/api/batches", get(pages::batches_json))
        .route("/dashboard/jobs", get(pages::jobs))
        .route("/dashboard/jobs/{id}", get(pages::job))
        .route("/dashboard/jobs/{id}/{action}", post(actions::job_action))
        .route("/dashboard/queues/{name}", get(pages::queue))
        .route("/dashboard/queues/{name}/{action}", post(actions::queue_action))
        .route(
            "/dashboard/queues/{name}/dead/{action}",
            get(pages::confirm_dead).post(actions::dead_action),
        )
        .route("/dashboard/batches", get(pages::batches))
        .route("/dashboard/workers", get(pages::workers))
        .route("/dashboard/schedules", get(pages::schedules))
        .route("/dashboard/schedules/{name}/{action}", post(actions::schedule_action))
        .route("/dashboard/backups", get(pages::backups))
        .route("/dashboard/keys", get(pages::keys))
        .route("/dashboard/assets/{name}", get(asset))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        // Not the API's `no-referrer`: under it browsers send `Origin: null` on the dashboard's
        // own form posts, and the origin check could not tell them from a forgery.
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}

/// The dashboard with its guards, which need the state.
pub fn routes(state: AppState) -> Router<AppState> {
    router()
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard_origin))
        .layer(axum::middleware::from_fn_with_state(state, guard_host))
}

/// Answers only under the configured host names: a page fetched through another name (DNS
/// rebinding points an attacker's name at this address) gets nothing but a 421.
async fn guard_host(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    if host.is_some_and(|h| state.public_hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(h))) {
        return next.run(req).await;
    }
    tracing::warn!(
        host = %nightshift_common::telemetry::untrusted(host.unwrap_or("")),
        "dashboard: request for an unknown host refused"
    );
    (
        StatusCode::MISDIRECTED_REQUEST,
        "this dashboard answers only under its configured host names (NIGHTSHIFT_PUBLIC_URL)",
    )
        .into_response()
}

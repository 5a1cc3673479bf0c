//! Nightshift's HTTP API: enqueue jobs, read their outcome, health and metrics.
use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Request},
    routing::get,
};
use nightshift_catalog::Queues;
use nightshift_common::{Config, auth::TokenKeys, config::ServerLimits, db, keyring, telemetry};
use nightshift_queue::connect_redis;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

mod audit;
mod auth;
mod dashboard;
mod error;
pub mod openapi;
pub mod operations;
mod redis_watch;
mod routes;
mod server;

pub use error::ApiError;

pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("redis: {0}")]
    Redis(#[from] nightshift_queue::QueueError),
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
    #[error("listening: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Schedules(#[from] nightshift_catalog::schedules::ScheduleError),
    #[error(transparent)]
    Keyring(#[from] keyring::KeyringError),
}

#[derive(Clone)]
pub struct AppState {
    pub queues: Queues,
    pub db: PgPool,
    /// Records accepted jobs, group-committing the requests that arrive together.
    pub recorder: nightshift_common::group::GroupWriter<nightshift_common::history::Submitted>,
    /// Writes the audit rows of state-changing requests, group-committed too.
    pub audit: nightshift_common::group::GroupWriter<nightshift_common::audit::Entry>,
    pub redis: nightshift_queue::RedisConn,
    /// Whether Redis answers, so a request never waits for a silent one.
    pub redis_watch: redis_watch::RedisWatch,
    pub keys: TokenKeys,
    pub schedules: std::sync::Arc<Vec<nightshift_catalog::schedules::Schedule>>,
    /// The domain of Message-IDs for e-mails queued here.
    pub mail_domain: std::sync::Arc<str>,
    pub limits: auth::Limits,
    pub cors_origins: std::sync::Arc<[String]>,
    /// The keyring's master key, when tokens come from the keyring.
    pub keyring: Option<std::sync::Arc<nightshift_common::keyring::MasterKey>>,
    pub key_grace: Duration,
    /// The deployment's Redis key prefix (keyring announcements go under it).
    pub key_prefix: std::sync::Arc<str>,
    /// When the keyring was last reloaded because a token named an unknown key.
    pub last_kid_reload: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// Diagnostic job kinds may be enqueued (tests, benchmarks, chaos).
    pub diagnostics: bool,
    pub server: ServerLimits,
    /// `Host` values the dashboard answers on (DNS rebinding finds no page under another name);
    /// filled from the listening address by `serve` when none are configured.
    pub public_hosts: std::sync::Arc<[String]>,
    pub cashflow_debounce: Duration,
}

/// Headers on every response: a JSON API is never framed, sniffed, cached or referred from.
fn security_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    use axum::http::{HeaderName, HeaderValue, header};
    use tower_http::set_header::SetResponseHeaderLayer;
    let headers: [(HeaderName, &'static str); 5] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    headers.into_iter().fold(router, |r, (name, value)| {
        r.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ))
    })
}

/// CORS for the configured origins only; with none, browsers on other origins are refused.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderValue, Method, header};
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(allowed)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            "idempotency-key".parse().expect("header name"),
        ])
        .max_age(Duration::from_secs(600))
}

/// The OpenAPI document `/v1/openapi.json` serves (`nightshift openapi` prints it for the
/// clients' generators).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    documented_routes().1
}

fn api_routes() -> Router<AppState> {
    let (router, doc) = documented_routes();
    let doc = Arc::new(doc);
    router.route("/v1/openapi.json", get(move || std::future::ready(Json(doc.clone()))))
}

/// Every route with its OpenAPI documentation.
fn documented_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use routes::{
        batches, bulk_enqueue, cashflow, emails,
        finance::{
            self,
            items::{accounts, recurring, scheduled},
        },
        health, jobs, keys, reminders, schedules, webhooks,
    };
    use utoipa::OpenApi;
    use utoipa_axum::{router::OpenApiRouter, routes};
    let (router, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(jobs::enqueue))
        .merge(
            // A batch may be larger than any other body; each of its jobs may not.
            OpenApiRouter::new()
                .routes(routes!(bulk_enqueue::enqueue_batch))
                .layer(DefaultBodyLimit::max(bulk_enqueue::MAX_BATCH_BYTES)),
        )
        .merge(
            OpenApiRouter::new()
                .routes(routes!(batches::create, batches::list))
                .routes(routes!(batches::add))
                .layer(DefaultBodyLimit::max(bulk_enqueue::MAX_BATCH_BYTES)),
        )
        .routes(routes!(batches::read))
        .routes(routes!(batches::seal))
        .routes(routes!(jobs::status))
        .routes(routes!(cashflow::read, cashflow::delete))
        .routes(routes!(cashflow::list))
        .routes(routes!(cashflow::refresh))
        .merge(
            // A household's whole finance data may be larger than a job.
            OpenApiRouter::new()
                .routes(routes!(finance::read, finance::replace))
                .layer(DefaultBodyLimit::max(finance::MAX_FINANCE_BYTES)),
        )
        .routes(routes!(finance::get_user, finance::put_user, finance::delete_user))
        .routes(routes!(accounts::list, accounts::create))
        .routes(routes!(accounts::get, accounts::replace, accounts::delete))
        .routes(routes!(recurring::list, recurring::create))
        .routes(routes!(recurring::get, recurring::replace, recurring::delete))
        .routes(routes!(scheduled::list, scheduled::create))
        .routes(routes!(scheduled::get, scheduled::replace, scheduled::delete))
        .routes(routes!(reminders::list, reminders::create))
        .routes(routes!(reminders::get, reminders::replace, reminders::delete))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(webhooks::delete_webhook))
        .routes(routes!(webhooks::rotate_webhook))
        .routes(routes!(emails::send))
        .routes(routes!(emails::status))
        .routes(routes!(keys::list))
        .routes(routes!(keys::rotate))
        .routes(routes!(schedules::list))
        .routes(routes!(schedules::pause))
        .routes(routes!(schedules::resume))
        .routes(routes!(schedules::run_now))
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .split_for_parts();
    openapi::name_catalog_values(&mut doc);
    openapi::unique_operation_ids(&mut doc);
    (router, doc)
}

pub fn router(state: AppState) -> Router {
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    let cors = cors(&state.cors_origins);
    let router = api_routes()
        // After routing, so the audit row names the route template.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record_changes,
        ))
        // The dashboard audits its own actions, under the operator's session.
        .merge(dashboard::routes(state.clone()))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            state.server.request_timeout,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            // The path is the client's text: bounded and escaped, as every log line of the
            // request carries it. OpenTelemetry's fields are filled only when traces are
            // exported, as the job span's are: the log layer formats every field it is given.
            use tracing::field::Empty;
            let span = tracing::info_span!(
                "request",
                otel.name = Empty,
                otel.kind = Empty,
                method = %req.method(),
                path = %nightshift_common::telemetry::untrusted(req.uri().path()),
                request_id = %nightshift_common::telemetry::untrusted(id),
                trace_id = Empty,
                span_id = Empty,
            );
            if nightshift_common::telemetry::exporting() {
                // Named after the route's template (`{method} {http.route}`), or the method
                // alone for a path no route matched; named and kinded before `relate` starts it.
                let name = match req.extensions().get::<axum::extract::MatchedPath>() {
                    Some(route) => format!("{} {}", req.method(), route.as_str()),
                    None => req.method().to_string(),
                };
                span.record("otel.name", name);
                span.record("otel.kind", "server");
                // An incoming W3C `traceparent` makes the request a part of the caller's trace.
                let tp = req.headers().get("traceparent").and_then(|v| v.to_str().ok());
                nightshift_common::telemetry::relate(&span, tp, nightshift_common::telemetry::Relation::Child);
            }
            span
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(cors);
    security_headers(router).with_state(state)
}

/// The operations listener of any process (`NIGHTSHIFT_OPS_ADDR`): liveness and Prometheus
/// metrics, and the API's readiness when given its state. Metrics name queues, kinds and rates:
/// they stay on this internal address, never on the API's public port. It has limits and a
/// connection cap of its own ([`ServerLimits::ops`]), so the probes answer whatever the public
/// port suffers.
pub async fn serve_ops(
    listener: TcpListener,
    api: Option<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = telemetry::metrics();
    let mut router = Router::new()
        .route("/health/live", get(routes::health::live))
        .route("/metrics", get(move || std::future::ready(metrics.render())));
    if let Some(state) = api {
        router = router.merge(
            Router::new()
                .route("/health/ready", get(routes::health::ready))
                .with_state(state),
        );
    }
    tracing::info!(addr = ?listener.local_addr().ok(), "ops listener (health, metrics)");
    server::serve(listener, router, ServerLimits::ops(), shutdown).await
}

/// Connects to Redis and PostgreSQL and builds the state the routes share.
pub async fn state(config: &Config, keys: TokenKeys) -> Result<AppState, StartError> {
    // The recorder first: the API counts from its first request (served on NIGHTSHIFT_OPS_ADDR).
    telemetry::metrics();
    let redis = connect_redis(&config.redis_url).await?;
    nightshift_queue::clock::follow(redis.clone()).await;
    let db = db::connect(&config.database_url, 20).await?;
    let queues = Queues::new(redis.clone(), &config.queue);
    queues.register_all().await?;
    // The API's /metrics carries queue depths too: a scraper of the API alone sees the backlog.
    tokio::spawn(nightshift_catalog::export_queue_depth(queues.clone()));
    let keyring = match &config.master_key {
        None => None,
        Some(hex) => {
            let master = std::sync::Arc::new(keyring::MasterKey::from_hex(hex)?);
            tokio::spawn(keyring::follow(
                db.clone(),
                master.clone(),
                keys.clone(),
                config.redis_url.clone(),
                config.queue.prefix.clone(),
            ));
            Some(master)
        }
    };
    Ok(AppState {
        queues,
        recorder: nightshift_common::group::GroupWriter::spawn(db.clone(), "enqueue"),
        audit: nightshift_common::group::GroupWriter::spawn(db.clone(), "audit"),
        db,
        redis_watch: redis_watch::RedisWatch::spawn(redis.clone()),
        redis,
        keys,
        schedules: std::sync::Arc::new(nightshift_catalog::schedules::load()?),
        mail_domain: nightshift_catalog::email::message_id_domain(&config.mail.from).into(),
        limits: auth::Limits::new(&config.queue.prefix, &config.api_limits),
        cors_origins: config.cors_origins.clone().into(),
        keyring,
        key_grace: config.key_grace,
        key_prefix: config.queue.prefix.as_str().into(),
        last_kid_reload: Default::default(),
        diagnostics: config.diagnostics,
        server: config.server.clone(),
        public_hosts: config.public_hosts.clone().into(),
        cashflow_debounce: config.cashflow_debounce,
    })
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    mut state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "api listening");
    if state.public_hosts.is_empty() {
        state.public_hosts = server::default_hosts(addr).into();
    }
    let limits = state.server.clone();
    server::serve(listener, router(state), limits, shutdown).await
}

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use nightshift_common::recovery;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct Live {
    /// Always `ok`.
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` when both dependencies answer, else `unavailable`.
    status: &'static str,
    /// `ok`, `unavailable`, or `recovering` while jobs Redis lost are re-derived from PostgreSQL.
    redis: &'static str,
    postgres: &'static str,
}

/// The process is up. Never checks dependencies: a Redis outage must not restart every pod.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, description = "Up", body = Live)))]
pub async fn live() -> Json<Live> {
    Json(Live { status: "ok" })
}

/// Ready to take work: Redis and PostgreSQL both answer within a second.
#[utoipa::path(
    get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Redis or PostgreSQL does not answer", body = Readiness)
    )
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let limit = Duration::from_secs(1);
    let mut conn = state.redis.clone();
    let redis_ok = state.redis_watch.answering()
        && tokio::time::timeout(limit, redis::cmd("PING").query_async::<String>(&mut conn))
            .await
            .is_ok_and(|r| r.is_ok());
    let db_ok = tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(&state.db))
        .await
        .is_ok_and(|r| r.is_ok());
    // A Redis that answers but lost its data is not ready: queued work is missing until a
    // worker re-derives it.
    let lost = redis_ok
        && db_ok
        && tokio::time::timeout(limit, recovery::check(&state.db, &mut conn, &state.key_prefix))
            .await
            .is_ok_and(|r| matches!(r, Ok(recovery::Epoch::Lost)));
    let ready = redis_ok && db_ok && !lost;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    (
        status,
        Json(Readiness {
            status: word(ready),
            redis: if lost { "recovering" } else { word(redis_ok) },
            postgres: word(db_ok),
        }),
    )
}

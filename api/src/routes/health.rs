use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use crate::AppState;

/// The process is up. Never checks dependencies: a Redis outage must not restart every pod.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready to take work: Redis and PostgreSQL both answer within a second.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let limit = Duration::from_secs(1);
    let mut conn = state.redis.clone();
    let redis_ok = tokio::time::timeout(limit, redis::cmd("PING").query_async::<String>(&mut conn))
        .await
        .is_ok_and(|r| r.is_ok());
    let db_ok = tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(&state.db))
        .await
        .is_ok_and(|r| r.is_ok());
    let status = if redis_ok && db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    (
        status,
        Json(json!({ "status": word(redis_ok && db_ok), "redis": word(redis_ok), "postgres": word(db_ok) })),
    )
}

pub async fn metrics(State(state): State<AppState>) -> String {
    state.metrics.render()
}

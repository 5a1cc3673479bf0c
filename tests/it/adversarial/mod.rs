//! The trust model, tried as an attacker would: with nothing but tokens the API hands out,
//! against a running platform on real Redis and PostgreSQL. The table of hostile requests
//! replayed in one go (`table`: each must get its status, push nothing, write nothing, and leave
//! the platform healthy with its history advancing) apart from one regression test per hole
//! found, by concern: tokens, scopes and confinement (`tokens`), slow and greedy clients
//! (`connections`), bodies and log lines (`bodies`). The helpers they share are here.
mod bodies;
mod connections;
mod table;
mod tokens;

use std::time::Duration;

use nightshift_common::auth::Scope;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const RW: &[Scope] = &[Scope::JobsRead, Scope::JobsWrite];

fn token_for(sub: &str, user: Option<i64>, scopes: &[Scope]) -> String {
    keys().issue_for(sub, user, scopes, Duration::from_secs(600)).unwrap()
}

async fn add_users(db: &TestDb, ids: &[i64]) {
    let pool = db.pool().await;
    for id in ids {
        sqlx::query("INSERT INTO users (id, email, time_zone) VALUES ($1, 'u' || $1 || '@example.com', 'UTC')")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
}

/// Sends raw bytes as the body of `POST path` (reqwest's `.json` could not send trailing bytes).
async fn post_raw(app: &App, token: &str, path: &str, body: &'static str) -> (u16, Value) {
    let resp = app
        .http
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Jobs in every queue's Redis sets, whatever their state.
async fn jobs_in_redis(redis: &PrivateRedis) -> u64 {
    let mut total = 0;
    for name in nightshift_catalog::queue_names() {
        let c = queue(redis, name).await.counts().await.unwrap();
        total += c.scheduled + c.queued + c.running + c.retrying + c.dead + c.succeeded_total + c.cancelled_total;
    }
    total
}

async fn history_rows(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM job_history")
        .fetch_one(&db.pool().await)
        .await
        .unwrap()
}

/// A job enqueued now runs and its success reaches the history: the writer is not wedged.
async fn history_advances(app: &App, db: &TestDb) {
    let id = app.enqueue_id(&token(RW), json!({"kind": "noop"})).await;
    let pool = db.pool().await;
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    wait_for("the job's success in the history", Duration::from_secs(20), || async {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM job_history WHERE id = $1")
            .bind(uuid)
            .fetch_optional(&pool)
            .await
            .unwrap();
        (state.as_deref() == Some("succeeded")).then_some(())
    })
    .await;
}

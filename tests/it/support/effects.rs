//! The jobs the fault tests count: `diag.effect` jobs whose runs (`diag_effects`) and fenced
//! effects (`diag_ledger`) tell whether a job ran more than once, and the small waits around
//! them. Leases are 3 s in these tests, so a fault lasts a few leases.
use std::time::Duration;

use chrono::{DateTime, Utc};
use nightshift_common::Config;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::{App, PrivateRedis, TestDb, config, wait_for};

pub fn three_second_leases(redis: &PrivateRedis, db: &TestDb) -> Config {
    let mut config = config(redis, db);
    config.queue.lease = Duration::from_secs(3);
    config.queue.reap_interval = Duration::from_millis(500);
    config
}

/// PostgreSQL's time: the true clock these tests measure against.
pub async fn db_now(pool: &PgPool) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Each job's runs: (job id, runs, first start).
pub async fn runs(pool: &PgPool) -> Vec<(uuid::Uuid, i64, DateTime<Utc>)> {
    sqlx::query_as("SELECT job_id, count(*), min(at) FROM diag_effects GROUP BY job_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Enqueues `n` `diag.effect` jobs keyed `<prefix><i>`, with `payload` and the request's
/// `extra` fields merged in; their ids.
pub async fn effects(app: &App, token: &str, n: usize, prefix: &str, payload: Value, extra: Value) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let mut p = json!({"key": format!("{prefix}{i}")});
        p.as_object_mut().unwrap().extend(payload.as_object().unwrap().clone());
        let mut body = json!({"kind": "diag.effect", "payload": p});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        ids.push(app.enqueue_id(token, body).await);
    }
    ids
}

/// Effects applied under their keys (the ledger fences each key once).
pub async fn effects_applied(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM diag_ledger")
        .fetch_one(pool)
        .await
        .unwrap()
}

pub async fn wait_succeeded(app: &App, token: &str, ids: &[String], within: Duration) {
    for id in ids {
        app.wait_state(token, id, "succeeded", within).await;
    }
}

/// Waits until `n` worker processes heartbeat on the queue prefix.
pub async fn workers_up(config: &Config, n: usize) {
    let conn = nightshift_queue::connect_redis(&config.redis_url).await.unwrap();
    wait_for("the workers to heartbeat", Duration::from_secs(30), || {
        let mut conn = conn.clone();
        async move {
            let up = nightshift_queue::list_workers(&mut conn, &config.queue.prefix, 10_000)
                .await
                .ok()?;
            (up.len() >= n).then_some(())
        }
    })
    .await;
}

//! The queue backend on a three-master Redis Cluster started from `redis-server` processes:
//! jobs of several queues (whose keys live on different masters) are enqueued through the API,
//! delayed, retried, killed and run to their end.
use std::{collections::BTreeSet, time::Duration};

use nightshift_common::auth::Scope;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn jobs_of_every_queue_run_on_a_three_master_cluster() {
    let cluster = RedisCluster::start();
    let db = TestDb::create().await;
    let pool = db.pool().await;
    sqlx::query("INSERT INTO users (id, email, time_zone) SELECT g, 'u' || g || '@example.com', 'UTC' FROM generate_series(1, 10) g")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO accounts (user_id, name, balance) SELECT id, 'main', 100000 FROM users")
        .execute(&pool)
        .await
        .unwrap();
    let config = config_at(cluster.url(), &db);
    let prefix = config.queue.prefix.clone();
    let app = App::start(&config, true).await;
    let token = token(&[Scope::JobsWrite, Scope::JobsRead, Scope::Admin]);

    let mut succeed = Vec::new();
    for i in 0..30 {
        succeed.push(app.enqueue_id(&token, json!({"kind": "noop", "payload": {}})).await);
        if i % 10 == 0 {
            let delayed = json!({"kind": "noop", "payload": {}, "delay_secs": 1});
            succeed.push(app.enqueue_id(&token, delayed).await);
        }
    }
    for user in 1..=10 {
        let project = json!({"kind": "cashflow.project", "payload": {"user_id": user}});
        succeed.push(app.enqueue_id(&token, project).await);
    }
    succeed.push(
        app.enqueue_id(&token, json!({"kind": "reminder.scan", "payload": {}}))
            .await,
    );
    let failing = json!({"kind": "diag.fail", "payload": {"message": "boom"}, "max_attempts": 2});
    let dead = app.enqueue_id(&token, failing).await;

    for id in &succeed {
        app.wait_state(&token, id, "succeeded", Duration::from_secs(30)).await;
    }
    let status = app.wait_state(&token, &dead, "dead", Duration::from_secs(30)).await;
    assert_eq!(status["attempts"], 2, "retried once, then dead: {status}");
    let projected: i64 = sqlx::query_scalar("SELECT count(*) FROM cashflow_projections")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(projected, 10);

    // The queues really are spread over the masters: their keys hash to different nodes.
    let nodes: BTreeSet<u16> = ["default", "cashflow", "reminders", "email", "webhooks", "backups"]
        .iter()
        .map(|q| cluster.node_of(&format!("{prefix}:{{{q}}}:ready")))
        .collect();
    assert!(nodes.len() >= 2, "all queues on one node: {nodes:?}");
    app.stop().await;
}

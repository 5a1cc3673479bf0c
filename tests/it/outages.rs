//! PostgreSQL stopped and restarted under a running platform: enqueues are refused (never a
//! 2xx for a job not on record), readiness says why, and everything resumes by itself.
use std::time::Duration;

use nightshift_common::auth::Scope;
use serde_json::{Value, json};

use crate::support::*;

const RW: &[Scope] = &[Scope::JobsRead, Scope::JobsWrite];
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_is_down_enqueues_get_503_and_the_platform_resumes_by_itself_after() {
    let redis = PrivateRedis::start();
    let pg = PrivatePostgres::start();
    let db = TestDb::at(pg.url("nightshift_outage")).await;
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(RW);
    let ready = || async {
        let r = app.http.get(format!("{}/health/ready", app.base)).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let first = app.enqueue_id(&token, json!({"kind": "noop"})).await;
    app.wait_state(&token, &first, "succeeded", WAIT).await;
    assert_eq!(ready().await.0, 200);

    pg.stop();
    let (status, body) = ready().await;
    assert_eq!(
        (status, body["postgres"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    // The job cannot be put on record: the client is told to retry, with its key.
    let during = app.enqueue(&token, json!({"kind": "noop"}), Some("outage-1")).await;
    assert_eq!(during.status(), 503);
    assert!(during.headers().contains_key("retry-after"));

    pg.start_again();
    // The retry with the same key is one job, on record under this client, and it ran.
    let id = wait_for("the retried enqueue to be accepted", WAIT, || async {
        let r = app.enqueue(&token, json!({"kind": "noop"}), Some("outage-1")).await;
        if r.status() != 202 {
            return None;
        }
        Some(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string())
    })
    .await;
    app.wait_state(&token, &id, "succeeded", WAIT).await;
    // Workers and the history writer came back without a restart.
    let after = app.enqueue_id(&token, json!({"kind": "noop"})).await;
    app.wait_state(&token, &after, "succeeded", WAIT).await;
    wait_for("readiness", WAIT, || async { (ready().await.0 == 200).then_some(()) }).await;
    let pool = db.pool().await;
    let rows = wait_for("the history to catch up", WAIT, || async {
        let rows: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT state, submitted_by FROM job_history ORDER BY id")
                .fetch_all(&pool)
                .await
                .ok()?;
        rows.iter().all(|r| r.0 == "succeeded").then_some(rows)
    })
    .await;
    assert_eq!(rows.len(), 3, "first, the retried one, after: {rows:?}");
    assert!(rows.iter().all(|r| r.1.as_deref() == Some("test-client")), "{rows:?}");
    app.stop().await;
}

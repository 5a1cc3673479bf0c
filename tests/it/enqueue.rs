//! The enqueue path under load: requests that arrive together share their history write
//! (group commit), and each still gets exactly the answer it would get alone.
use std::collections::{BTreeSet, HashMap};

use nightshift_common::auth::Scope;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn a_thousand_concurrent_enqueues_each_get_their_own_answer_and_only_valid_ones_are_on_record() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    // A thousand connections from one address: past the per-address cap (256) the server cuts
    // them, which is another test's subject (adversarial/connections.rs), not this one's.
    config.server.max_connections_per_ip = 0;
    let app = App::start(&config, false).await;
    let token = token(&[Scope::JobsRead, Scope::JobsWrite]);
    // Every tenth request is invalid; every fifth repeats one of ten keys with the same request;
    // the rest are plain.
    let plan = |i: usize| -> (Value, Option<String>, u16) {
        match i % 10 {
            0 => (json!({"kind": "noop", "max_attempts": 0}), None, 422),
            5 => (
                json!({"kind": "diag.sleep", "payload": {"ms": i % 10}}),
                Some(format!("k{}", i % 100 / 10)),
                202,
            ),
            _ => (json!({"kind": "diag.sleep", "payload": {"ms": i}}), None, 202),
        }
    };
    let sends = (0..1000).map(|i| {
        let (body, key, _) = plan(i);
        let (app, token) = (&app, &token);
        async move {
            let resp = app.enqueue(token, body, key.as_deref()).await;
            let status = resp.status().as_u16();
            (i, status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    });
    let answers = futures::future::join_all(sends).await;

    let mut by_key: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut accepted = BTreeSet::new();
    for (i, status, body) in &answers {
        let (_, key, expected) = plan(*i);
        assert_eq!(*status, expected, "request {i}: {body}");
        if *status == 422 {
            assert_eq!(body["error"]["field"], "max_attempts", "request {i}: {body}");
            continue;
        }
        let id = body["id"].as_str().unwrap().to_string();
        if let Some(k) = key {
            by_key.entry(k).or_default().insert(id.clone());
        }
        accepted.insert(id);
    }
    // One job per key, however many requests raced for it.
    assert_eq!(by_key.len(), 10);
    assert!(by_key.values().all(|ids| ids.len() == 1), "{by_key:?}");
    assert_eq!(accepted.len(), 800 + 10);

    // Exactly the accepted jobs are on record, each under its client, and in Redis.
    let recorded: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT id::text, submitted_by FROM job_history ORDER BY id")
            .fetch_all(&db.pool().await)
            .await
            .unwrap();
    let recorded_ids: BTreeSet<String> = recorded.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(recorded_ids, accepted);
    assert!(recorded.iter().all(|(_, by)| by.as_deref() == Some("test-client")));
    let counts = queue(&redis, "default").await.counts().await.unwrap();
    assert_eq!(counts.queued, accepted.len() as u64);
    app.stop().await;
}

//! `POST /v1/jobs/batch`: per-item answers by index, nothing stored of a refused item,
//! idempotency inside and across batches, the size limits, and a rate limit that counts jobs.
use nightshift_common::auth::Scope;
use serde_json::{Value, json};

use crate::support::*;

const RW: &[Scope] = &[Scope::JobsRead, Scope::JobsWrite];

async fn batch(app: &App, token: &str, body: &Value) -> (u16, Value) {
    let resp = app
        .http
        .post(format!("{}/v1/jobs/batch", app.base))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn on_record(db: &TestDb) -> Vec<(String, String)> {
    sqlx::query_as("SELECT id::text, kind FROM job_history ORDER BY id")
        .fetch_all(&db.pool().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn each_item_gets_its_own_answer_and_only_accepted_ones_are_queued_and_on_record() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let body = json!({ "jobs": [
        {"kind": "noop"},
        {"kind": "no.such.kind"},
        {"kind": "diag.sleep", "payload": {"ms": "soon"}},
        {"kind": "diag.sleep", "payload": {"ms": 5}, "delay_secs": 60},
        {"kind": "maintenance.cleanup"},
        {"kind": "noop", "max_attempts": 0},
        {"kind": "noop", "surprise": true},
        "not an object",
        {"kind": "noop", "idempotency_key": "has space"},
    ]});
    let (status, answer) = batch(&app, &token(RW), &body).await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 9);
    assert_eq!(
        (answer["accepted"].as_u64(), answer["refused"].as_u64()),
        (Some(2), Some(7))
    );
    let refusal = |i: usize| {
        (
            results[i]["status"].as_u64().unwrap(),
            results[i]["error"]["field"].as_str().unwrap(),
        )
    };
    assert!(results[0]["id"].is_string() && results[3]["id"].is_string(), "{answer}");
    assert_eq!(refusal(1), (422, "jobs[1].kind"));
    assert_eq!(refusal(2), (422, "jobs[2].payload.ms"));
    assert_eq!(
        refusal(4),
        (403, "jobs[4].kind"),
        "an operator kind needs admin, in a batch too"
    );
    assert_eq!(refusal(5), (422, "jobs[5].max_attempts"));
    assert_eq!(refusal(6), (422, "jobs[6]"));
    assert!(results[6]["error"]["message"].as_str().unwrap().contains("surprise"));
    assert_eq!(refusal(7), (422, "jobs[7]"));
    assert_eq!(refusal(8), (422, "jobs[8].idempotency_key"));

    // Exactly the accepted jobs exist, in Redis and on record, under their ids and states.
    let ids = [results[0]["id"].as_str().unwrap(), results[3]["id"].as_str().unwrap()];
    let mut recorded = on_record(&db).await;
    recorded.sort();
    let mut expected = vec![
        (ids[0].to_string(), "noop".to_string()),
        (ids[1].to_string(), "diag.sleep".to_string()),
    ];
    expected.sort();
    assert_eq!(recorded, expected);
    let default = queue(&redis, "default").await;
    let counts = default.counts().await.unwrap();
    assert_eq!((counts.queued, counts.scheduled), (1, 1), "{counts:?}");
    assert_eq!(
        default.inspect(ids[1]).await.unwrap().unwrap().state.to_string(),
        "scheduled"
    );
    app.stop().await;
}

#[tokio::test]
async fn keys_dedupe_inside_a_batch_across_batches_and_with_single_enqueues() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let token = token(RW);
    let first = json!({ "jobs": [
        {"kind": "noop", "idempotency_key": "a"},
        {"kind": "noop", "idempotency_key": "a"},
        {"kind": "diag.sleep", "payload": {"ms": 1}, "idempotency_key": "a"},
        {"kind": "noop", "idempotency_key": "b"},
        {"kind": "noop"},
    ]});
    let (status, one) = batch(&app, &token, &first).await;
    assert_eq!(status, 200, "{one}");
    let r = one["results"].as_array().unwrap();
    let a = r[0]["id"].as_str().unwrap();
    assert_eq!(r[1]["id"], a, "the same request under the same key is the same job");
    assert_eq!(
        r[2]["status"], 422,
        "another request under a used key is refused: {one}"
    );
    assert_eq!(r[2]["error"]["field"], "jobs[2].idempotency_key");
    assert_ne!(r[3]["id"], a);

    // Across batches, and against POST /v1/jobs with the header: the first job again.
    let (_, two) = batch(
        &app,
        &token,
        &json!({ "jobs": [{"kind": "noop", "idempotency_key": "b"}] }),
    )
    .await;
    assert_eq!(two["results"][0]["id"], r[3]["id"]);
    let single = app.enqueue(&token, json!({"kind": "noop"}), Some("a")).await;
    assert_eq!(single.status(), 202);
    assert_eq!(single.json::<Value>().await.unwrap()["id"], a);

    // Three jobs exist: a, b and the unkeyed one; each on record once.
    assert_eq!(on_record(&db).await.len(), 3);
    assert_eq!(queue(&redis, "default").await.counts().await.unwrap().queued, 3);
    app.stop().await;
}

#[tokio::test]
async fn oversized_batches_are_refused_whole() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let token = token(RW);
    let many: Vec<Value> = (0..1001).map(|_| json!({"kind": "noop"})).collect();
    let (status, err) = batch(&app, &token, &json!({ "jobs": many })).await;
    assert_eq!((status, err["error"]["field"].as_str()), (422, Some("jobs")), "{err}");
    let (status, err) = batch(&app, &token, &json!({ "jobs": [] })).await;
    assert_eq!((status, err["error"]["field"].as_str()), (422, Some("jobs")), "{err}");
    // Past the batch's body limit: 413, whatever the items.
    let big = "x".repeat(60 * 1024);
    let heavy: Vec<Value> = (0..20)
        .map(|_| json!({"kind": "noop", "payload": {"pad": big}}))
        .collect();
    let (status, err) = batch(&app, &token, &json!({ "jobs": heavy })).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (413, Some("too_large")),
        "{err}"
    );
    // One item past the single-job limit refuses only itself.
    let huge = "x".repeat(70 * 1024);
    let (status, one) = batch(
        &app,
        &token,
        &json!({ "jobs": [{"kind": "noop", "payload": {"pad": huge}}, {"kind": "noop"}] }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["results"][0]["error"]["field"], "jobs[0]");
    assert!(one["results"][1]["id"].is_string());
    assert_eq!(on_record(&db).await.len(), 1, "only the accepted job is on record");
    app.stop().await;
}

#[tokio::test]
async fn the_rate_limit_counts_jobs_not_requests() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    // Ten jobs a minute per client, in bursts of up to ten.
    config.api_limits.per_client = (10, 10);
    let app = App::start(&config, false).await;
    let token = token(RW);
    let jobs = |n: usize| json!({ "jobs": (0..n).map(|_| json!({"kind": "noop"})).collect::<Vec<_>>() });
    let (status, err) = batch(&app, &token, &jobs(11)).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("jobs")),
        "over the burst: {err}"
    );
    let (status, _) = batch(&app, &token, &jobs(8)).await;
    assert_eq!(status, 200);
    // Nine of ten spent (eight jobs and the refused request): a batch of three does not fit.
    let (status, err) = batch(&app, &token, &jobs(3)).await;
    assert_eq!(status, 429, "{err}");
    assert_eq!(on_record(&db).await.len(), 8);
    app.stop().await;
}

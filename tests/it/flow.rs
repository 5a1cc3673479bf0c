//! Flow control through the API: `dedupe` keys that fold requests into an earlier job while it
//! is pending, within a throttle window, or until a debounce window passes with no request.
use std::time::Duration;

use nightshift_common::auth::Scope;
use serde_json::{Value, json};

use crate::support::*;

const RW: &[Scope] = &[Scope::JobsRead, Scope::JobsWrite];

/// `POST /v1/jobs` with `token`: the status and the body.
async fn enqueue(app: &App, token: &str, body: Value) -> (u16, Value) {
    app.post(token, "/v1/jobs", body).await
}

fn effect(key: &str, dedupe: Value) -> Value {
    json!({"kind": "diag.effect", "payload": {"key": key}, "dedupe": dedupe})
}

#[tokio::test]
async fn pending_throttle_and_debounce_keys_fold_requests_into_the_earlier_job() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    // No workers: jobs stay where the pushes put them.
    let app = App::start(&config(&redis, &db), false).await;
    let token = token(RW);
    let q = queue(&redis, "default").await;

    // pending: the same key returns the first job until it is finished (here, cancelled).
    let pending = json!({"key": "sync:42", "mode": "pending"});
    let (status, first) = enqueue(&app, &token, effect("a", pending.clone())).await;
    assert_eq!((status, &first["deduplicated"]), (202, &Value::Null));
    let id = first["id"].as_str().unwrap().to_string();
    let (status, again) = enqueue(&app, &token, effect("b", pending.clone())).await;
    assert_eq!((status, again), (200, json!({"id": id, "deduplicated": true})));
    let (_, other_key) = enqueue(&app, &token, effect("c", json!({"key": "sync:43", "mode": "pending"}))).await;
    assert_ne!(other_key["id"], id);
    // Another client's same key is its own.
    let other_client = keys().issue("other-client", RW, Duration::from_secs(600)).unwrap();
    let (status, theirs) = enqueue(&app, &other_client, effect("d", pending.clone())).await;
    assert_eq!(status, 202);
    assert_ne!(theirs["id"], id);
    q.cancel(&id).await.unwrap();
    let (status, after) = enqueue(&app, &token, effect("e", pending.clone())).await;
    assert_eq!(status, 202, "the first job is finished: a new one");
    assert_ne!(after["id"], id);

    // throttle: the same key returns the first job for the window, then makes a new one.
    let throttle = json!({"key": "digest", "mode": "throttle", "secs": 1});
    let window_opened = std::time::Instant::now();
    let (_, first) = enqueue(&app, &token, effect("f", throttle.clone())).await;
    let (status, again) = enqueue(&app, &token, effect("g", throttle.clone())).await;
    assert_eq!((status, &again["id"]), (200, &first["id"]));
    // Asked again until the window is over: every request inside it is folded like the second.
    let (status, later) = poll_until(Duration::from_secs(10), || async {
        let (status, body) = enqueue(&app, &token, effect("h", throttle.clone())).await;
        if status == 200 {
            assert_eq!(body["id"], first["id"], "inside the window: the first job");
            return None;
        }
        Some((status, body))
    })
    .await
    .expect("a new job once the window is over");
    assert_eq!(status, 202);
    assert_ne!(later["id"], first["id"]);
    assert!(
        window_opened.elapsed() >= Duration::from_secs(1),
        "a new job before the window ended"
    );

    // debounce: the job waits; each request replaces its payload and moves its start back.
    let debounce = json!({"key": "project:7", "mode": "debounce", "secs": 30});
    let (status, first) = enqueue(&app, &token, effect("i", debounce.clone())).await;
    assert_eq!(status, 202);
    let id = first["id"].as_str().unwrap().to_string();
    let start = q.inspect(&id).await.unwrap().unwrap();
    assert_eq!(start.state.as_str(), "scheduled");
    // Asked again until the clock has moved on: each request is folded into the waiting job
    // and pushes its start to a window after it.
    let moved = poll_until(Duration::from_secs(5), || async {
        let (status, again) = enqueue(&app, &token, effect("j", debounce.clone())).await;
        assert_eq!((status, again["id"].as_str()), (200, Some(id.as_str())));
        let record = q.inspect(&id).await.ok()??;
        (record.run_at_ms > start.run_at_ms).then_some(record)
    })
    .await
    .expect("the start moved back");
    let payload: Value = serde_json::from_str(&moved.payload).unwrap();
    assert_eq!(payload["key"], "j", "the last payload wins");
    assert!(
        moved.run_at_ms > start.run_at_ms,
        "{:?} then {:?}",
        start.run_at_ms,
        moved.run_at_ms
    );

    // In a batch, a later item under the key of an earlier one is folded into it.
    let resp = app
        .http
        .post(format!("{}/v1/jobs/batch", app.base))
        .bearer_auth(&token)
        .json(&json!({"jobs": [
            effect("k", json!({"key": "b", "mode": "pending"})),
            effect("l", json!({"key": "b", "mode": "pending"})),
        ]}))
        .send()
        .await
        .unwrap();
    let batch: Value = resp.json().await.unwrap();
    assert_eq!(batch["accepted"], 2);
    assert_eq!(
        batch["results"][1],
        json!({"id": batch["results"][0]["id"], "deduplicated": true})
    );

    // Bad values name the field and push nothing.
    let before = q.counts().await.unwrap();
    for (dedupe, field) in [
        (json!({"key": "k", "mode": "sometimes"}), "dedupe.mode"),
        (json!({"key": "k", "mode": "throttle"}), "dedupe.secs"),
        (json!({"key": "k", "mode": "debounce", "secs": 0}), "dedupe.secs"),
        (json!({"key": "k", "mode": "debounce", "secs": 86_401}), "dedupe.secs"),
        (json!({"key": "k", "mode": "pending", "secs": 5}), "dedupe.secs"),
        (json!({"key": "", "mode": "pending"}), "dedupe.key"),
        (json!({"key": "a\u{7}b", "mode": "pending"}), "dedupe.key"),
        (json!({"key": "k".repeat(201), "mode": "pending"}), "dedupe.key"),
    ] {
        let (status, error) = enqueue(&app, &token, effect("z", dedupe.clone())).await;
        assert_eq!(
            (status, error["error"]["field"].as_str()),
            (422, Some(field)),
            "{dedupe}"
        );
    }
    let (status, error) = enqueue(
        &app,
        &token,
        effect("z", json!({"key": "k", "mode": "pending", "extra": 1})),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    let after = q.counts().await.unwrap();
    assert_eq!((after.queued, after.scheduled), (before.queued, before.scheduled));
    app.stop().await;
}

/// Requests to two API instances within the window make one run, with the last payload.
#[tokio::test]
async fn debounce_runs_once_with_the_last_payload_across_api_instances() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let (one, two) = (App::start(&config, true).await, App::start(&config, false).await);
    let token = token(RW);
    let debounce = json!({"key": "recompute", "mode": "debounce", "secs": 1});
    let mut ids = Vec::new();
    for (i, app) in [&one, &two, &one, &two, &one].into_iter().enumerate() {
        let (_, body) = enqueue(app, &token, effect(&format!("run-{i}"), debounce.clone())).await;
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    one.wait_state(&token, &ids[0], "succeeded", Duration::from_secs(20))
        .await;
    let pool = db.pool().await;
    let runs: Vec<String> = sqlx::query_scalar("SELECT business_key FROM diag_ledger ORDER BY 1")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(runs, ["run-4"]);
    // Its history shows what ran, once the run is on record.
    let recorded = poll_until(Duration::from_secs(10), || async {
        let key: Option<String> =
            sqlx::query_scalar("SELECT payload->>'key' FROM job_history WHERE id = $1::uuid AND state = 'succeeded'")
                .bind(&ids[0])
                .fetch_optional(&pool)
                .await
                .ok()??;
        key
    })
    .await;
    assert_eq!(recorded.as_deref(), Some("run-4"));
    // After the run, the key starts a new window: a new job.
    let (status, next) = enqueue(&two, &token, effect("run-5", debounce.clone())).await;
    assert_eq!(status, 202);
    assert_ne!(next["id"].as_str(), Some(ids[0].as_str()));
    one.stop().await;
    two.stop().await;
}

/// A worker taking one job at a time runs them by priority, in order within one; a job
/// retried by hand goes back to its own priority.
#[tokio::test]
async fn ready_jobs_start_by_priority_and_in_order_within_one() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.concurrency = 1;
    let api = App::start(&config, false).await;
    let token = token(RW);
    // Interleaved: 9s, 5s (the default), 3s and 0s.
    let mut expected: Vec<(u8, String)> = Vec::new();
    for i in 0..6 {
        for p in [9, 5, 3, 0] {
            let key = format!("p{p}-{i}");
            let mut body = json!({"kind": "diag.effect", "payload": {"key": key}});
            if p != 5 {
                body["priority"] = json!(p);
            }
            let (status, _) = enqueue(&api, &token, body).await;
            assert_eq!(status, 202);
            expected.push((p, key));
        }
    }
    let q = queue(&redis, "default").await;
    assert_eq!(q.counts().await.unwrap().queued, expected.len() as u64);
    // A priority-0 job cancelled and retried by an operator goes back among the 0s.
    let (_, late) = enqueue(
        &api,
        &token,
        json!({"kind": "diag.effect", "payload": {"key": "p0-late"}, "priority": 0}),
    )
    .await;
    let late = late["id"].as_str().unwrap().to_string();
    q.cancel(&late).await.unwrap();
    q.retry(&late).await.unwrap();
    expected.push((0, "p0-late".into()));
    // Listed once: the id its cancel left in the list was taken out by the retry.
    assert_eq!(q.counts().await.unwrap().queued, expected.len() as u64);
    let listed = q.list(nightshift_queue::JobState::Queued, 0, 100).await.unwrap();
    assert_eq!(
        (listed[0].priority, listed.last().unwrap().priority),
        (0, 9),
        "the queued list is in leasing order"
    );
    // The CLI lists them the same way, with their priority.
    let (_, listing) = cli(&["jobs", "default", "--state", "queued", "--limit", "100"], &config);
    let prios: Vec<&str> = listing
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(prios.first(), Some(&"0"), "{listing}");
    assert_eq!(prios.last(), Some(&"9"), "{listing}");
    assert!(prios.windows(2).all(|w| w[0] <= w[1]), "{listing}");
    // Bad priorities name the field.
    for p in [json!(10), json!(-1), json!("high"), json!(1.5)] {
        let (status, error) = enqueue(&api, &token, json!({"kind": "noop", "priority": p})).await;
        assert_eq!(
            (status, error["error"]["field"].as_str()),
            (422, Some("priority")),
            "{p}: {error}"
        );
    }

    let worker = App::start(&config, true).await;
    let pool = db.pool().await;
    let ran = poll_until(Duration::from_secs(30), || async {
        let keys: Vec<String> = sqlx::query_scalar("SELECT business_key FROM diag_ledger ORDER BY id")
            .fetch_all(&pool)
            .await
            .ok()?;
        (keys.len() == expected.len()).then_some(keys)
    })
    .await
    .expect("every job ran");
    // The retried job was pushed back to the leasing end of its list: first of the 0s.
    let mut order: Vec<(u8, String)> = expected.clone();
    order.sort_by_key(|(p, key)| (*p, key != "p0-late"));
    let order: Vec<String> = order.into_iter().map(|(_, k)| k).collect();
    assert_eq!(ran, order);
    api.stop().await;
    worker.stop().await;
}

/// A job that fails and waits for its retry is still pending: a `pending` key returns it until
/// it finishes, a `throttle` key for its whole window whatever the job's state.
#[tokio::test]
async fn pending_and_throttle_keys_hold_while_the_job_fails_and_retries() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(RW);
    let failing = |dedupe: Value| {
        json!({"kind": "diag.fail", "max_attempts": 3, "dedupe": dedupe,
               "payload": {"succeed_from_attempt": 2, "retry_after_ms": 1500}})
    };
    for (dedupe, after_success) in [
        (json!({"key": "p", "mode": "pending"}), 202),
        (json!({"key": "t", "mode": "throttle", "secs": 60}), 200),
    ] {
        let (status, first) = enqueue(&app, &token, failing(dedupe.clone())).await;
        assert_eq!(status, 202);
        let id = first["id"].as_str().unwrap().to_string();
        let retrying = app.wait_state(&token, &id, "retrying", Duration::from_secs(10)).await;
        assert_eq!(retrying["attempts"], 1);
        let (status, again) = enqueue(&app, &token, failing(dedupe.clone())).await;
        assert_eq!(
            (status, &again["id"]),
            (200, &first["id"]),
            "{dedupe}: retrying, still the job"
        );
        app.wait_state(&token, &id, "succeeded", Duration::from_secs(10)).await;
        let (status, later) = enqueue(&app, &token, failing(dedupe.clone())).await;
        assert_eq!(status, after_success, "{dedupe}: after it succeeded: {later}");
        assert_eq!(later["id"] == first["id"], after_success == 200, "{dedupe}");
    }
    app.stop().await;
}

/// A grouped job cancelled while it waits and retried by hand is listed and counted once (its
/// cancel left its id in the group's list), and runs once.
#[tokio::test]
async fn a_grouped_job_cancelled_and_retried_by_hand_is_counted_once_and_runs_once() {
    use nightshift_queue::NewJob;
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let q = queue(&redis, "default").await;
    let effect = |key: &str| NewJob::new("diag.effect", json!({"key": key}).to_string()).group("g1");
    let retried = effect("g-retried");
    let id = retried.id.clone();
    q.push(retried).await.unwrap();
    q.push(effect("g-other")).await.unwrap();
    q.cancel(&id).await.unwrap();
    assert_eq!(q.retry(&id).await.unwrap(), nightshift_queue::JobState::Queued);
    assert_eq!(q.counts().await.unwrap().queued, 2);
    let worker = App::start(&config, true).await;
    let pool = db.pool().await;
    let ran = poll_until(Duration::from_secs(20), || async {
        let c = q.counts().await.ok()?;
        let keys: Vec<String> = sqlx::query_scalar("SELECT business_key FROM diag_ledger ORDER BY 1")
            .fetch_all(&pool)
            .await
            .ok()?;
        (c.queued + c.running == 0 && keys.len() == 2).then_some(keys)
    })
    .await
    .expect("both ran and the queue is empty");
    assert_eq!(ran, ["g-other", "g-retried"]);
    assert_eq!(q.inspect(&id).await.unwrap().unwrap().attempts, 1);
    worker.stop().await;
}

/// Dedupe under races: 200 concurrent requests under one key for each mode, spread over three
/// API instances, a tenth of them cut by their client right after sending: exactly one job per
/// key. Then the rule for a job that ended (cancelled here; dead is the same): `pending` frees
/// its key, `throttle` holds its window, `debounce` frees it.
#[tokio::test]
async fn two_hundred_racing_requests_over_three_api_instances_make_one_job_per_key_in_every_mode() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let apis = [
        App::start(&config, false).await,
        App::start(&config, false).await,
        App::start(&config, false).await,
    ];
    let token = token(RW);
    let q = queue(&redis, "default").await;
    let waiting = || async {
        let c = q.counts().await.unwrap();
        c.queued + c.scheduled
    };
    for (mode, dedupe) in [
        ("pending", json!({"key": "race-p", "mode": "pending"})),
        ("throttle", json!({"key": "race-t", "mode": "throttle", "secs": 3600})),
        ("debounce", json!({"key": "race-d", "mode": "debounce", "secs": 3600})),
    ] {
        let before = waiting().await;
        let body = effect(mode, dedupe.clone()).to_string();
        let requests = (0..200).map(|i| {
            let (app, token, body) = (&apis[i % 3], token.clone(), body.clone());
            async move {
                if i % 10 == 0 {
                    // The whole request, then the connection closed without reading the answer.
                    let addr = app.base.trim_start_matches("http://");
                    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let raw = format!(
                        "POST /v1/jobs HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
                         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    use tokio::io::AsyncWriteExt;
                    let _ = s.write_all(raw.as_bytes()).await;
                    drop(s);
                    None
                } else {
                    let (status, reply) = app.post(&token, "/v1/jobs", serde_json::from_str(&body).unwrap()).await;
                    assert!(status == 202 || status == 200, "{mode}: {status} {reply}");
                    Some(reply["id"].as_str().unwrap().to_string())
                }
            }
        });
        let ids: Vec<String> = futures::future::join_all(requests)
            .await
            .into_iter()
            .flatten()
            .collect();
        let mut distinct = ids.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            1,
            "{mode}: every answered request names one job: {distinct:?}"
        );
        // The cut requests the server finished anyway were folded in too.
        wait_for("the cut requests to settle", Duration::from_secs(10), || async {
            (waiting().await == before + 1).then_some(())
        })
        .await;
        // The job ends (an operator cancels it): what a new request under the key does.
        q.cancel(&distinct[0]).await.unwrap();
        let (status, after) = enqueue(&apis[0], &token, effect(mode, dedupe)).await;
        match mode {
            "throttle" => assert_eq!(
                (status, &after["id"]),
                (200, &json!(distinct[0])),
                "throttle holds its window"
            ),
            _ => assert_eq!(status, 202, "{mode} frees its key once its job ended: {after}"),
        }
    }
    for app in apis {
        app.stop().await;
    }
}

//! Batches through the API: counts, callbacks enqueued exactly once (under concurrent finishes,
//! a killed worker and a Redis restart), open batches, ownership and bad input.
use std::time::Duration;

use nightshift_common::auth::Scope;
use serde_json::{Value, json};

use crate::support::*;

const RW: &[Scope] = &[Scope::JobsRead, Scope::JobsWrite];

async fn call(app: &App, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", app.base);
    let req = match method {
        "GET" => app.http.get(url),
        _ => app.http.post(url),
    }
    .bearer_auth(token);
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// Waits until the batch is finished and each callback's job has succeeded.
async fn finished(app: &App, token: &str, id: &str, within: Duration) -> Value {
    wait_for(&format!("batch {id} to finish"), within, || async {
        let (status, b) = call(app, token, "GET", &format!("/v1/batches/{id}"), None).await;
        let done = status == 200
            && b["state"] == "finished"
            && b["callbacks"]
                .as_array()?
                .iter()
                .all(|c| c["job_id"].is_null() || c["job_state"] == "succeeded");
        done.then_some(b)
    })
    .await
}

fn effect(key: &str) -> Value {
    json!({"kind": "diag.effect", "payload": {"key": key}})
}

/// Callback jobs recorded for a batch: (kind, job id), once at least `expected` are (the
/// history's writer is batched: a callback that succeeded in Redis reaches it a moment later),
/// or whatever is there after 10 s.
async fn callback_jobs(db: &TestDb, batch: &str, expected: usize) -> Vec<(String, String)> {
    let pool = db.pool().await;
    let read = || async {
        sqlx::query_as("SELECT kind, id::text FROM job_history WHERE payload->'batch'->>'id' = $1 ORDER BY kind")
            .bind(batch)
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    let rows = poll_until(Duration::from_secs(10), || async {
        let rows: Vec<(String, String)> = read().await;
        (rows.len() >= expected).then_some(rows)
    })
    .await;
    match rows {
        Some(rows) => rows,
        None => read().await,
    }
}

#[tokio::test]
async fn a_batch_counts_its_jobs_and_enqueues_each_callback_once() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(RW);
    // Sealed at once: 8 effects and 2 jobs that die; the success callback is not owed.
    let mut jobs: Vec<Value> = (0..8).map(|i| effect(&format!("b1-{i}"))).collect();
    for _ in 0..2 {
        jobs.push(json!({"kind": "diag.fail", "max_attempts": 1, "payload": {}}));
    }
    let (status, made) = call(
        &app,
        &token,
        "POST",
        "/v1/batches",
        Some(json!({"jobs": jobs, "description": "nightly import",
                    "on_complete": {"kind": "diag.effect", "payload": {"key": "b1-complete"}},
                    "on_success": {"kind": "noop"}})),
    )
    .await;
    assert_eq!(status, 202, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    let ids: Vec<String> = serde_json::from_value(made["job_ids"].clone()).unwrap();
    assert_eq!(ids.len(), 10);
    let b = finished(&app, &token, &id, Duration::from_secs(30)).await;
    assert_eq!(
        (&b["total"], &b["pending"], &b["succeeded"], &b["dead"], &b["cancelled"]),
        (&json!(10), &json!(0), &json!(8), &json!(2), &json!(0)),
        "{b}"
    );
    assert_eq!(b["description"], "nightly import");
    let callbacks = b["callbacks"].as_array().unwrap();
    assert_eq!(callbacks[0]["on"], "complete");
    assert_eq!(callbacks[1]["job_id"], Value::Null, "a job died: no success callback");
    // The complete callback ran once, told the counts and the dead jobs.
    let cb = callbacks[0]["job_id"].as_str().unwrap();
    let (_, job) = call(&app, &token, "GET", &format!("/v1/jobs/{cb}"), None).await;
    let pool = db.pool().await;
    let told: Value = sqlx::query_scalar("SELECT payload->'batch' FROM job_history WHERE id = $1::uuid")
        .bind(cb)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((&told["total"], &told["dead"]), (&json!(10), &json!(2)), "{told} {job}");
    let mut dead: Vec<String> = serde_json::from_value(told["dead_ids"].clone()).unwrap();
    dead.sort();
    let mut expected = ids[8..].to_vec();
    expected.sort();
    assert_eq!(dead, expected);
    assert_eq!(callback_jobs(&db, &id, 1).await.len(), 1);

    // Open: jobs added in two requests, then sealed; all succeed, so both callbacks run.
    let (status, open) = call(
        &app,
        &token,
        "POST",
        "/v1/batches",
        Some(json!({"jobs": [effect("b2-0")], "open": true,
                    "on_complete": {"kind": "noop"}, "on_success": {"kind": "diag.effect", "payload": {"key": "b2-ok"}}})),
    )
    .await;
    assert_eq!(status, 202);
    let open_id = open["id"].as_str().unwrap().to_string();
    let (status, added) = call(
        &app,
        &token,
        "POST",
        &format!("/v1/batches/{open_id}/jobs"),
        Some(json!({"jobs": [effect("b2-1"), effect("b2-2")]})),
    )
    .await;
    assert_eq!(
        (status, added["job_ids"].as_array().map(Vec::len)),
        (202, Some(2)),
        "{added}"
    );
    // All three may have finished already: still open, it does not finish.
    let (_, before) = call(&app, &token, "GET", &format!("/v1/batches/{open_id}"), None).await;
    assert_eq!(before["state"], "open");
    let (status, sealed) = call(&app, &token, "POST", &format!("/v1/batches/{open_id}/seal"), None).await;
    assert_eq!(status, 200, "{sealed}");
    let b = finished(&app, &token, &open_id, Duration::from_secs(30)).await;
    assert_eq!((&b["total"], &b["succeeded"]), (&json!(3), &json!(3)));
    assert_eq!(callback_jobs(&db, &open_id, 2).await.len(), 2);
    let (status, _) = call(
        &app,
        &token,
        "POST",
        &format!("/v1/batches/{open_id}/jobs"),
        Some(json!({"jobs": [effect("b2-late")]})),
    )
    .await;
    assert_eq!(status, 409, "a sealed batch takes no job");
    // Listed, newest first, filtered by state.
    let (_, listed) = call(&app, &token, "GET", "/v1/batches?state=finished", None).await;
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [open_id.as_str(), id.as_str()]);
    app.stop().await;
}

/// Three worker processes finish a batch's jobs side by side; one is SIGKILLed near the end and
/// Redis is killed and restarted from its append-only file meanwhile. The callback is still
/// enqueued once, and every job counted once.
#[tokio::test]
async fn the_callback_is_enqueued_once_with_a_worker_killed_near_the_end_and_redis_restarted() {
    let _heavy = heavy().await;
    let mut redis = PrivateRedis::start_durable();
    let db = TestDb::create().await;
    let config = config(&redis, &db);
    let api = App::start(&config, false).await;
    let token = token(RW);
    let procs: Vec<Proc> = (0..3).map(|_| Proc::spawn(&["worker"], &config, &[])).collect();
    let mut ids = Vec::new();
    let (status, made) = call(
        &api,
        &token,
        "POST",
        "/v1/batches",
        Some(json!({"jobs": [], "open": true,
                    "on_complete": {"kind": "diag.effect", "payload": {"key": "chaos-complete"}}})),
    )
    .await;
    assert_eq!(status, 202, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    for chunk in 0..3 {
        let jobs: Vec<Value> = (0..100)
            .map(|i| json!({"kind": "diag.effect", "payload": {"key": format!("c-{chunk}-{i}"), "ms": 20}}))
            .collect();
        let (status, added) = call(
            &api,
            &token,
            "POST",
            &format!("/v1/batches/{id}/jobs"),
            Some(json!({"jobs": jobs})),
        )
        .await;
        assert_eq!(status, 202, "{added}");
        ids.extend(serde_json::from_value::<Vec<String>>(added["job_ids"].clone()).unwrap());
    }
    call(&api, &token, "POST", &format!("/v1/batches/{id}/seal"), None).await;
    // Redis killed mid-run and restarted from its file.
    poll_until(Duration::from_secs(30), || async {
        let (_, b) = call(&api, &token, "GET", &format!("/v1/batches/{id}"), None).await;
        (b["pending"].as_i64()? < 250).then_some(())
    })
    .await
    .expect("the batch makes progress");
    redis.restart();
    // A worker killed near the end, while jobs finish.
    poll_until(Duration::from_secs(60), || async {
        let (status, b) = call(&api, &token, "GET", &format!("/v1/batches/{id}"), None).await;
        (status == 200 && b["pending"].as_i64()? <= 5).then_some(())
    })
    .await
    .expect("the batch nears its end");
    procs[0].signal("KILL");
    let b = finished(&api, &token, &id, Duration::from_secs(60)).await;
    assert_eq!(
        (&b["total"], &b["succeeded"], &b["pending"]),
        (&json!(300), &json!(300), &json!(0)),
        "{b}"
    );
    let callbacks = callback_jobs(&db, &id, 1).await;
    assert_eq!(callbacks.len(), 1, "{callbacks:?}");
    let ran: i64 = sqlx::query_scalar("SELECT count(*) FROM diag_ledger WHERE business_key = 'chaos-complete'")
        .fetch_one(&db.pool().await)
        .await
        .unwrap();
    assert_eq!(ran, 1);
    // Every job counted once: 300 rows with a state, no more.
    let counted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM batch_jobs WHERE batch_id = $1::uuid AND state = 'succeeded'")
            .bind(&id)
            .fetch_one(&db.pool().await)
            .await
            .unwrap();
    assert_eq!(counted, 300);
    drop(procs);
    api.stop().await;
}

/// A batch's job that Redis lost in a restart from its append-only file is re-derived from the
/// history into its batch: the batch still finishes and calls back once.
#[tokio::test]
async fn a_batch_job_lost_in_a_redis_restart_is_rederived_into_its_batch() {
    let mut redis = PrivateRedis::start_durable();
    let db = TestDb::create().await;
    let config = config(&redis, &db);
    let api = App::start(&config, false).await;
    let token = token(RW);
    // Workers watch the server: they see it before and after the restart.
    let workers = App::start(&config, true).await;
    let q = queue(&redis, "default").await;
    q.pause().await.unwrap();
    let (status, made) = call(
        &api,
        &token,
        "POST",
        "/v1/batches",
        Some(json!({"jobs": [effect("lost-0"), effect("lost-1")],
                    "on_complete": {"kind": "diag.effect", "payload": {"key": "lost-complete"}}})),
    )
    .await;
    assert_eq!(status, 202, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    let lost = made["job_ids"][0].as_str().unwrap().to_string();
    restart_redis_without(&mut redis, &q, &lost).await;
    let b = finished(&api, &token, &id, Duration::from_secs(30)).await;
    assert_eq!((&b["total"], &b["succeeded"]), (&json!(2), &json!(2)), "{b}");
    assert_eq!(callback_jobs(&db, &id, 1).await.len(), 1);
    workers.stop().await;
    api.stop().await;
}

/// The API recorded a batch's three jobs and stopped before pushing one of them (its caller got
/// no 202). Past the orphan age, that job, known to no queue and no history, is taken back and
/// the batch finishes and calls back; a job still waiting in its queue is not taken back.
#[tokio::test]
async fn a_batch_job_recorded_but_never_pushed_is_taken_back_and_the_batch_finishes() {
    use nightshift_common::batches::{self, Callback, NewBatch};
    use nightshift_queue::NewJob;
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.batch_orphan_age = Duration::from_secs(1);
    let pool = db.pool().await;
    let batch = uuid::Uuid::now_v7();
    let ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::now_v7()).collect();
    batches::create(
        &pool,
        &NewBatch {
            id: batch,
            submitted_by: Some("client-a".into()),
            submitted_user: None,
            description: None,
            on_complete: Some(Callback {
                kind: "diag.effect".into(),
                payload: json!({"key": "orphan-complete"}),
            }),
            on_success: None,
            sealed: true,
            traceparent: None,
        },
        &ids,
        None,
    )
    .await
    .unwrap();
    // The first runs at once, the third waits 4 s in the queue; the second was never pushed.
    let q = queue(&redis, "default").await;
    for (i, delay) in [(0, 0), (2, 4)] {
        let mut job = NewJob::new("diag.effect", json!({"key": format!("orphan-{i}")}).to_string())
            .batch(batch.to_string())
            .delay(Duration::from_secs(delay));
        job.id = ids[i].to_string();
        q.push(job).await.unwrap();
    }
    let workers = App::start(&config, true).await;
    let counts = || async {
        sqlx::query_as::<_, (i32, i32, bool)>(
            "SELECT total, succeeded, finished_at IS NOT NULL FROM batches WHERE id = $1",
        )
        .bind(batch)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let first = wait_for("the unpushed job taken back", Duration::from_secs(10), || async {
        let c = counts().await;
        (c.0 == 2).then_some(c)
    })
    .await;
    assert!(!first.2, "the batch still waits for its queued job: {first:?}");
    let done = wait_for("the batch to finish", Duration::from_secs(20), || async {
        let c = counts().await;
        c.2.then_some(c)
    })
    .await;
    assert_eq!(done, (2, 2, true));
    wait_for("the callback to run", Duration::from_secs(10), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM diag_ledger WHERE business_key = 'orphan-complete'")
            .fetch_one(&pool)
            .await
            .ok()?;
        (n == 1).then_some(())
    })
    .await;
    assert_eq!(callback_jobs(&db, &batch.to_string(), 1).await.len(), 1);
    workers.stop().await;
}

#[tokio::test]
async fn another_clients_batch_is_a_404_and_bad_batches_name_their_field() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let mine = token(RW);
    let theirs = keys().issue("other-client", RW, Duration::from_secs(600)).unwrap();
    let (status, made) = call(
        &app,
        &mine,
        "POST",
        "/v1/batches",
        Some(json!({"jobs": [effect("x")], "open": true})),
    )
    .await;
    assert_eq!(status, 202);
    let id = made["id"].as_str().unwrap();
    for (method, path, body) in [
        ("GET", format!("/v1/batches/{id}"), None),
        (
            "POST",
            format!("/v1/batches/{id}/jobs"),
            Some(json!({"jobs": [effect("y")]})),
        ),
        ("POST", format!("/v1/batches/{id}/seal"), None),
    ] {
        let (status, body) = call(&app, &theirs, method, &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (_, listed) = call(&app, &theirs, "GET", "/v1/batches", None).await;
    assert_eq!(listed, json!([]), "another client lists none of mine");
    let (status, _) = call(
        &app,
        &mine,
        "GET",
        &format!("/v1/batches/{}", uuid::Uuid::now_v7()),
        None,
    )
    .await;
    assert_eq!(status, 404);

    let many: Vec<Value> = (0..1001).map(|i| effect(&format!("m{i}"))).collect();
    for (body, status, field) in [
        (json!({"jobs": many}), 422, "jobs"),
        (
            json!({"jobs": [{"kind": "diag.effect", "payload": {}, "dedupe": {"key": "k", "mode": "pending"}}]}),
            422,
            "jobs[0].dedupe",
        ),
        (
            json!({"jobs": [{"kind": "diag.effect", "payload": {}, "idempotency_key": "k1"}]}),
            422,
            "jobs[0].idempotency_key",
        ),
        (
            json!({"jobs": [{"kind": "diag.effect", "payload": {"nope": 1}}]}),
            422,
            "jobs[0].payload.nope",
        ),
        (
            json!({"jobs": [], "on_complete": {"kind": "maintenance.cleanup", "payload": {}}}),
            403,
            "on_complete.kind",
        ),
        (
            json!({"jobs": [], "on_complete": {"kind": "email.send", "payload": {}}}),
            403,
            "on_complete.kind",
        ),
        (
            json!({"jobs": [], "on_success": {"kind": "diag.sleep", "payload": {"ms": 1}}}),
            422,
            "on_success.kind",
        ),
        (
            json!({"jobs": [], "on_complete": {"kind": "noop", "payload": {"batch": {}}}}),
            422,
            "on_complete.payload.batch",
        ),
        (
            json!({"jobs": [], "on_complete": {"kind": "noop", "payload": []}}),
            422,
            "on_complete.payload",
        ),
        (json!({"jobs": [], "description": "x".repeat(201)}), 422, "description"),
    ] {
        let (got, err) = call(&app, &mine, "POST", "/v1/batches", Some(body.clone())).await;
        assert_eq!((got, err["error"]["field"].as_str()), (status, Some(field)), "{err}");
    }
    let (status, err) = call(&app, &mine, "GET", "/v1/batches?state=done", None).await;
    assert_eq!((status, err["error"]["field"].as_str()), (422, Some("state")));
    app.stop().await;
}

/// Open batches wait for jobs until sealed: a caller holds at most the configured number at
/// once (a 409 naming the cap), counted per caller; sealed ones do not count.
#[tokio::test]
async fn a_caller_holds_at_most_its_cap_of_open_batches() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.api_limits.open_batches = 2;
    let app = App::start(&config, false).await;
    let token = token(RW);
    let open = || Some(json!({"jobs": [], "open": true}));
    let (_, first) = call(&app, &token, "POST", "/v1/batches", open()).await;
    assert_eq!(call(&app, &token, "POST", "/v1/batches", open()).await.0, 202);
    let (status, refused) = call(&app, &token, "POST", "/v1/batches", open()).await;
    assert_eq!(status, 409, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains('2') && message.contains("NIGHTSHIFT_MAX_OPEN_BATCHES"),
        "{message}"
    );
    // Sealed batches, and another caller's open ones, are not held against it.
    assert_eq!(
        call(&app, &token, "POST", "/v1/batches", Some(json!({"jobs": []})))
            .await
            .0,
        202
    );
    let other = keys().issue("other-client", RW, Duration::from_secs(600)).unwrap();
    assert_eq!(call(&app, &other, "POST", "/v1/batches", open()).await.0, 202);
    // Sealing one gives its place back.
    let id = first["id"].as_str().unwrap();
    assert_eq!(
        call(&app, &token, "POST", &format!("/v1/batches/{id}/seal"), None)
            .await
            .0,
        200
    );
    assert_eq!(call(&app, &token, "POST", "/v1/batches", open()).await.0, 202);
    app.stop().await;
}

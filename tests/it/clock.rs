//! One clock, tried with real processes whose clocks are wrong (libfaketime, which
//! scripts/test.sh installs): workers, API instances and scheduler replicas 90 s fast or slow
//! beside true ones, a handler that blocks every runtime thread, and a long job beside short
//! ones. Leases are 3 s here, so a test lasts a few leases. Redis's own faults (a stall, a bad
//! link, a failover) are in `redis_faults`.
use std::time::Duration;

use chrono::{DateTime, Utc};
use nightshift_common::auth::Scope;
use serde_json::{Value, json};

use crate::support::*;

const RW: &[Scope] = &[Scope::JobsRead, Scope::JobsWrite];

/// A worker 90 s fast and one 90 s slow beside a true one: no delayed job starts early and no
/// live lease is taken (before, the fast one started a 20 s delay after 1 s and ran 20 s jobs
/// three times each), and each job runs once.
#[tokio::test]
async fn workers_whose_clocks_run_90s_fast_or_slow_start_no_delayed_job_early_and_take_no_live_lease() {
    let _heavy = heavy().await;
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = three_second_leases(&redis, &db);
    let pool = db.pool().await;
    let app = App::start(&config, false).await;
    let _workers = [
        Proc::spawn(&["worker"], &config, &[]),
        Proc::spawn_skewed("+90", &["worker"], &config, &[]),
        Proc::spawn_skewed("-90", &["worker"], &config, &[]),
    ];
    workers_up(&config, 3).await;
    let token = token(RW);
    let enqueued_at = db_now(&pool).await;
    let delayed = effects(&app, &token, 12, "d", json!({}), json!({"delay_secs": 4})).await;
    // Three leases long each: the fast worker's reaper read such leases as expired.
    let long = effects(&app, &token, 6, "l", json!({"ms": 9000}), json!({})).await;
    wait_succeeded(&app, &token, &delayed, Duration::from_secs(60)).await;
    wait_succeeded(&app, &token, &long, Duration::from_secs(60)).await;
    let runs = runs(&pool).await;
    assert_eq!(runs.len(), 18, "every job ran");
    let twice: Vec<_> = runs.iter().filter(|r| r.1 != 1).collect();
    assert!(twice.is_empty(), "jobs that ran more than once: {twice:?}");
    let delayed_ids: Vec<uuid::Uuid> = delayed.iter().map(|d| d.parse().unwrap()).collect();
    let earliest = runs
        .iter()
        .filter(|r| delayed_ids.contains(&r.0))
        .map(|r| r.2)
        .min()
        .unwrap();
    assert!(
        earliest >= enqueued_at + chrono::Duration::seconds(3),
        "a 4 s delay started {} ms after it was enqueued",
        (earliest - enqueued_at).num_milliseconds()
    );
    assert_eq!(effects_applied(&pool).await, 18, "each effect once");
    app.stop().await;
}

/// API instances 90 s fast and 90 s slow: a fresh token is accepted and an expired one refused
/// by both (the slow one accepted expired tokens and refused fresh ones as issued in the
/// future), and a delay is counted from the true time (the slow one's jobs started at once).
#[tokio::test]
async fn api_instances_whose_clocks_run_90s_fast_or_slow_judge_tokens_and_delays_by_the_true_time() {
    let _heavy = heavy().await;
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = three_second_leases(&redis, &db);
    let pool = db.pool().await;
    let workers = App::start(&config, true).await;
    let now = Utc::now().timestamp();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "test-client", "scope": "jobs:read jobs:write", "iat": now - 120, "exp": now - 30,
                "iss": "nightshift", "aud": "nightshift-api"}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let http = reqwest::Client::new();
    for skew in ["+90", "-90"] {
        let (_api, addr) = Proc::spawn_serving_skewed(skew, &["api"], &config, &[]).await;
        let enqueue = |t: String, body: Value| {
            let req = http.post(format!("http://{addr}/v1/jobs")).bearer_auth(t).json(&body);
            async move {
                let r = req.send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let body = json!({"kind": "diag.effect", "payload": {"key": format!("k{skew}")}, "delay_secs": 4});
        assert_eq!(
            enqueue(expired.clone(), body.clone()).await.0,
            401,
            "{skew}: an expired token"
        );
        let enqueued_at = db_now(&pool).await;
        let (status, accepted) = enqueue(token(RW), body).await;
        assert_eq!(status, 202, "{skew}: a fresh token: {accepted}");
        let id = accepted["id"].as_str().unwrap().to_string();
        workers
            .wait_state(&token(RW), &id, "succeeded", Duration::from_secs(30))
            .await;
        let started: DateTime<Utc> = sqlx::query_scalar("SELECT min(at) FROM diag_effects WHERE job_id = $1::uuid")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(
            started >= enqueued_at + chrono::Duration::seconds(3),
            "{skew}: a 4 s delay started after {} ms",
            (started - enqueued_at).num_milliseconds()
        );
    }
    workers.stop().await;
}

/// A scheduler replica 90 s fast beside a true one: ticks are decided by PostgreSQL's clock, so
/// none is recorded before its time and each is fired once.
#[tokio::test]
async fn a_scheduler_replica_90s_fast_fires_each_tick_once_and_none_before_its_time() {
    let _heavy = heavy().await;
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let file = std::env::temp_dir().join(format!("schedules-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &file,
        "[[schedule]]\nname = \"every-second\"\ncron = \"* * * * * *\"\nkind = \"noop\"\nmisfire = \"run_once\"\nmisfire_grace_secs = 5\n",
    )
    .unwrap();
    let env = [("NIGHTSHIFT_SCHEDULES_FILE", file.to_str().unwrap())];
    let _replicas = [
        Proc::spawn_skewed("+90", &["scheduler"], &config, &env),
        Proc::spawn(&["scheduler"], &config, &env),
    ];
    let pool = db.pool().await;
    type Row = (DateTime<Utc>, DateTime<Utc>, String);
    let rows: Vec<Row> = wait_for("six ticks", Duration::from_secs(30), || async {
        let rows: Vec<Row> = sqlx::query_as("SELECT tick, recorded_at, outcome FROM schedule_ticks ORDER BY tick")
            .fetch_all(&pool)
            .await
            .unwrap();
        (rows.len() >= 6).then_some(rows)
    })
    .await;
    let early: Vec<_> = rows.iter().filter(|r| r.1 < r.0).collect();
    assert!(early.is_empty(), "ticks recorded before their time: {early:?}");
    let ticks: Vec<DateTime<Utc>> = rows.iter().map(|r| r.0).collect();
    assert!(
        ticks.windows(2).all(|w| w[1] - w[0] == chrono::Duration::seconds(1)),
        "{ticks:?}"
    );
    let _ = std::fs::remove_file(file);
}

/// A handler that blocks every runtime thread of its worker for three leases keeps its lease
/// (renewal has a thread of its own) and runs once; one blocked past its timeout loses the
/// lease and another worker gives it a second attempt.
#[tokio::test]
async fn a_handler_blocking_every_runtime_thread_keeps_its_lease_until_its_timeout() {
    let _heavy = heavy().await;
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = three_second_leases(&redis, &db);
    config.concurrency = 2;
    let app = App::start(&config, false).await;
    let token = token(RW);
    // Two runtime threads, two slots: both blocked at once.
    let _blocked = Proc::spawn(&["worker"], &config, &[("TOKIO_WORKER_THREADS", "2")]);
    workers_up(&config, 1).await;
    let block = |ms: u64| json!({"kind": "diag.block", "payload": {"ms": ms}});
    let short = [
        app.enqueue_id(&token, block(9_000)).await,
        app.enqueue_id(&token, block(9_000)).await,
    ];
    for id in &short {
        wait_for("the blocks to run", Duration::from_secs(20), || async {
            let s: Value = app.status(&token, id).await.json().await.ok()?;
            (s["state"] == "running").then_some(())
        })
        .await;
    }
    // A healthy worker beside it, whose reaper would take any lease that lapsed.
    let _healthy = Proc::spawn(&["worker"], &config, &[]);
    for id in &short {
        let s = app.wait_state(&token, id, "succeeded", Duration::from_secs(40)).await;
        assert_eq!(s["attempts"], 1, "a blocked handler lost its lease: {s}");
    }
    // 40 s against a 20 s timeout: renewal stops at 20 s, the lease lapses and the other
    // worker's reaper gives the job a second attempt.
    let stuck = app.enqueue_id(&token, block(40_000)).await;
    wait_for("a second attempt of the stuck job", Duration::from_secs(45), || async {
        let s: Value = app.status(&token, &stuck).await.json().await.ok()?;
        (s["attempts"].as_u64()? >= 2).then_some(())
    })
    .await;
    app.stop().await;
}

/// No head-of-line blocking: a worker leases no more jobs than it has free slots, so 50 short
/// jobs behind a 60 s one all finish while it still runs.
#[tokio::test]
async fn short_jobs_never_wait_behind_a_long_one_leased_by_a_full_worker() {
    let _heavy = heavy().await;
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = three_second_leases(&redis, &db);
    config.concurrency = 4;
    let app = App::start(&config, false).await;
    let token = token(RW);
    let _workers = [
        Proc::spawn(&["worker"], &config, &[]),
        Proc::spawn(&["worker"], &config, &[]),
    ];
    workers_up(&config, 2).await;
    let long = app
        .enqueue_id(
            &token,
            json!({"kind": "diag.sleep", "payload": {"ms": 60_000, "quiet": true}}),
        )
        .await;
    let short = effects(&app, &token, 50, "h", json!({"ms": 50}), json!({})).await;
    wait_succeeded(&app, &token, &short, Duration::from_secs(40)).await;
    let s: Value = app.status(&token, &long).await.json().await.unwrap();
    assert_eq!(s["state"], "running", "the short jobs finished while the long one ran");
    app.stop().await;
}

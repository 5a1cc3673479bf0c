//! Redis misbehaving under a running platform without restarting: it stops answering
//! (SIGSTOP), the link to it is slow and cuts connections, and it fails over to a promoted
//! replica behind the address the platform knows. Nothing accepted is lost and each effect
//! happens once.
use std::time::Duration;

use chrono::{DateTime, Utc};
use nightshift_common::auth::Scope;
use serde_json::{Value, json};

use crate::support::*;

const RW: &[Scope] = &[Scope::JobsRead, Scope::JobsWrite];

/// Redis stops answering (SIGSTOP) for two leases, then resumes: every accepted job succeeds
/// and each effect happens once; meanwhile the API refuses an enqueue with a 503 at once.
#[tokio::test]
async fn a_redis_stopped_for_two_leases_loses_no_job_and_doubles_no_effect() {
    let _heavy = heavy().await;
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = three_second_leases(&redis, &db);
    let pool = db.pool().await;
    let app = App::start(&config, true).await;
    let token = token(RW);
    let ids = effects(&app, &token, 20, "s", json!({"ms": 1000}), json!({})).await;
    redis.signal("STOP");
    let stopped = std::time::Instant::now();
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(8))
        .build()
        .unwrap();
    let ready = quick.get(format!("{}/health/ready", app.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503, "readiness while Redis does not answer");
    wait_for("two leases of silence", Duration::from_secs(10), || async {
        (stopped.elapsed() >= Duration::from_secs(6)).then_some(())
    })
    .await;
    // Told at once, not after the command timeout (5 s): the API knows Redis is silent
    // (it stops waiting for it after two seconds without an answer).
    let fast = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let during = fast
        .post(format!("{}/v1/jobs", app.base))
        .bearer_auth(&token)
        .json(&json!({"kind": "noop"}))
        .send()
        .await
        .expect("an enqueue while Redis is silent is answered before the command timeout");
    assert_eq!(during.status(), 503);
    assert!(during.headers().contains_key("retry-after"));
    redis.signal("CONT");
    wait_succeeded(&app, &token, &ids, Duration::from_secs(60)).await;
    assert_eq!(effects_applied(&pool).await, 20, "each effect once");
    app.stop().await;
}

/// A link to Redis that adds half a lease to every round trip and cuts 2 % of the connections
/// at a command: a job lasting ten leases keeps its lease (renewals start every third of a lease
/// whatever the round trip costs, and a failed one is tried again at once) and runs once.
#[tokio::test]
async fn a_job_of_ten_leases_runs_once_over_a_slow_and_lossy_link_to_redis() {
    let _heavy = heavy().await;
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let direct = three_second_leases(&redis, &db);
    let proxy = LatencyProxy::start(redis.port, Duration::from_millis(1500)).await;
    let mut config = direct.clone();
    config.redis_url = proxy.url();
    let pool = db.pool().await;
    // The API on a good link, the worker behind the bad one.
    let api = App::start(&direct, false).await;
    let worker = App::start(&config, true).await;
    let token = token(RW);
    let id = api
        .enqueue_id(
            &token,
            json!({"kind": "diag.effect", "payload": {"key": "long", "ms": 30_000}}),
        )
        .await;
    // Cuts from the moment the job runs (a worker that cannot reach Redis at start exits).
    wait_for("the job to run", Duration::from_secs(30), || async {
        let s: Value = api.status(&token, &id).await.json().await.ok()?;
        (s["state"] == "running").then_some(())
    })
    .await;
    proxy.set_reset(0.02);
    // Attempts may be more than one: a lease whose fetch reply the link cut was never run, and
    // comes back after its lease. Runs are what must be one.
    let finished = poll_until(Duration::from_secs(120), || async {
        let s: Value = api.status(&token, &id).await.json().await.ok()?;
        (s["state"] == "succeeded").then_some(())
    })
    .await;
    let status: Value = api.status(&token, &id).await.json().await.unwrap();
    let starts: Vec<(i32, DateTime<Utc>)> =
        sqlx::query_as("SELECT attempt, at FROM diag_effects WHERE job_id = $1::uuid ORDER BY at")
            .bind(&id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        finished.is_some(),
        "not finished: {status}; runs {starts:?}; cuts {:?}",
        proxy.resets
    );
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM diag_effects WHERE job_id = $1::uuid")
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(runs, 1, "the job ran once");
    use std::sync::atomic::Ordering::Relaxed;
    assert!(
        proxy.resets.load(Relaxed) > 0,
        "the link cut no connection: the test proved nothing"
    );
    worker.stop().await;
    api.stop().await;
}

/// A failover behind the address the platform knows (a proxy, as a DNS name or a cloud
/// endpoint would be): the replica is promoted, the old primary turns replica (answering
/// `READONLY`) and then dies. The API and the workers carry on against the new primary, the
/// jobs accepted after replication stopped (lost by the promoted replica) are re-derived from
/// the history, and each effect happens once.
#[tokio::test]
async fn a_failover_to_a_promoted_replica_loses_no_accepted_job_and_doubles_no_effect() {
    failover(false).await;
}

/// The same failover with the whole fleet restarted across it: no process that runs after the
/// switch saw the old server, and the jobs it lost are re-derived all the same (the servers the
/// platform worked against are on record in PostgreSQL, not in a process's memory).
#[tokio::test]
async fn a_fleet_restarted_across_a_failover_still_re_derives_what_the_new_primary_lacks() {
    failover(true).await;
}

async fn failover(fleet_restarted: bool) {
    let _heavy = heavy().await;
    let mut primary = PrivateRedis::start();
    let replica = PrivateRedis::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let db = TestDb::create().await;
    let proxy = LatencyProxy::start(primary.port, Duration::ZERO).await;
    let mut config = three_second_leases(&primary, &db);
    config.redis_url = proxy.url();
    let pool = db.pool().await;
    let app = App::start(&config, true).await;
    let token = token(RW);
    wait_for("the worker to record the server", Duration::from_secs(20), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM redis_runs")
            .fetch_one(&pool)
            .await
            .ok()?;
        (n > 0).then_some(())
    })
    .await;
    let before = effects(&app, &token, 10, "b", json!({"ms": 2000}), json!({})).await;
    let replica_conn = redis::Client::open(replica.url()).unwrap();
    let mut replica_conn = replica_conn.get_multiplexed_async_connection().await.unwrap();
    wait_for("the replica to catch up", Duration::from_secs(20), || {
        let mut c = replica_conn.clone();
        async move {
            let info: String = redis::cmd("INFO").arg("replication").query_async(&mut c).await.ok()?;
            info.contains("master_link_status:up").then_some(())
        }
    })
    .await;
    // Replication stops here: what the primary accepts from now on, the replica never sees.
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query_async(&mut replica_conn)
        .await
        .unwrap();
    let lost = effects(&app, &token, 10, "l", json!({}), json!({"delay_secs": 2})).await;
    let running = if fleet_restarted {
        app.stop().await;
        None
    } else {
        Some(app)
    };
    // The old primary is demoted and the address moves to the new one.
    let mut old = redis::Client::open(primary.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(replica.port)
        .query_async(&mut old)
        .await
        .unwrap();
    proxy.set_upstream(replica.port);
    let app = match running {
        Some(app) => app,
        None => App::start(&config, true).await,
    };
    // New work is accepted within seconds (the API's connection answered READONLY and was
    // replaced).
    let after = wait_for("an enqueue after the failover", Duration::from_secs(10), || async {
        let body = json!({"kind": "diag.effect", "payload": {"key": "a0"}});
        let r = app.enqueue(&token, body, Some("after-failover")).await;
        if r.status() != 202 {
            return None;
        }
        Some(r.json::<Value>().await.ok()?["id"].as_str()?.to_string())
    })
    .await;
    // The old primary dies once work runs on the new one: a job enqueued after the switch ran.
    app.wait_state(&token, &after, "succeeded", Duration::from_secs(30))
        .await;
    primary.kill();
    let mut ids = before.clone();
    ids.extend(lost.iter().cloned());
    ids.push(after);
    wait_succeeded(&app, &token, &ids, Duration::from_secs(60)).await;
    let runs = runs(&pool).await;
    assert_eq!(runs.len(), 21, "every job ran, the lost ones too");
    assert_eq!(effects_applied(&pool).await, 21, "each effect once");
    app.stop().await;
}

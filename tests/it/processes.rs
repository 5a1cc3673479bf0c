//! Real `nightshift` processes killed and stopped: what a crash or a deploy does to jobs.
use std::time::Duration;

use nightshift_common::auth::Scope;
use nightshift_queue::{JobState, NewJob};
use serde_json::json;

use crate::support::*;

const RW: &[Scope] = &[Scope::JobsRead, Scope::JobsWrite];

#[tokio::test]
async fn a_job_whose_worker_is_killed_runs_again_on_another_worker_with_attempt_two() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let app = App::start(&config, false).await;
    let token = token(RW);
    let mut first = Proc::spawn(&["worker"], &config, &[]);
    let id = app
        .enqueue_id(&token, json!({"kind": "diag.sleep", "payload": {"ms": 2000}}))
        .await;
    let running = app.wait_state(&token, &id, "running", Duration::from_secs(15)).await;
    assert_eq!(running["attempts"], 1);

    first.signal("KILL");
    let (clean_exit, _) = first.wait_output();
    assert!(!clean_exit);
    let second = Proc::spawn(&["worker"], &config, &[]);
    let done = app.wait_state(&token, &id, "succeeded", Duration::from_secs(30)).await;
    assert_eq!(done["attempts"], 2);
    assert_eq!(done["result"]["attempt"], 2, "the second run did the work: {done}");

    let q = queue(&redis, "default").await;
    let rec = q.inspect(&id).await.unwrap().unwrap();
    assert!(
        rec.worker.unwrap().contains(&format!(":{}:", second.pid())),
        "ran on the second worker"
    );
    drop(second);
    app.stop().await;
}

#[tokio::test]
async fn sigterm_lets_running_jobs_finish_and_leaves_the_rest_queued_without_leases() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.concurrency = 2;
    // A long lease: if shutdown left a lease behind, nothing would take it back during the test.
    config.queue.lease = Duration::from_secs(300);
    let app = App::start(&config, false).await;
    let token = token(RW);
    let mut ids = vec![];
    for _ in 0..6 {
        ids.push(
            app.enqueue_id(&token, json!({"kind": "diag.sleep", "payload": {"ms": 1500}}))
                .await,
        );
    }
    let mut worker = Proc::spawn(&["worker"], &config, &[]);
    let q = queue(&redis, "default").await;
    wait_for("two jobs running", Duration::from_secs(15), || async {
        (q.counts().await.ok()?.running == 2).then_some(())
    })
    .await;
    worker.signal("TERM");
    let (clean_exit, stderr) = worker.wait_output();
    assert!(clean_exit, "worker exited with an error:\n{stderr}");

    let counts = q.counts().await.unwrap();
    assert_eq!(
        (counts.running, counts.queued, counts.succeeded_total),
        (0, 4, 2),
        "{counts:?}"
    );
    let mut states = vec![];
    for id in &ids {
        let r = q.inspect(id).await.unwrap().unwrap();
        states.push((r.state, r.attempts));
    }
    assert_eq!(
        states.iter().filter(|s| **s == (JobState::Succeeded, 1)).count(),
        2,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| **s == (JobState::Queued, 0)).count(),
        4,
        "{states:?}"
    );

    // The next worker takes the rest at once, each on its first attempt.
    let _next = Proc::spawn(&["worker"], &config, &[]);
    for id in &ids {
        let s = app.wait_state(&token, id, "succeeded", Duration::from_secs(30)).await;
        assert_eq!(s["attempts"], 1);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_100k_due_jobs_is_all_processed() {
    // 100,000 jobs through a worker at concurrency 256: kept from overlapping the chaos and
    // scale runs, which used to have the machine to themselves (support::serial).
    let _heavy = heavy().await;
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.concurrency = 256;
    let q = queue(&redis, "default").await;
    // Delayed jobs that all fall due at once: promotion must not try to move them in one call.
    let jobs: Vec<NewJob> = (0..100_000)
        .map(|_| NewJob::new("noop", "{}").delay(Duration::from_millis(300)))
        .collect();
    let ids = q.push_bulk(&jobs).await.unwrap();
    assert_eq!(ids.len(), 100_000);
    assert_eq!(q.counts().await.unwrap().scheduled, 100_000);
    let _worker = Proc::spawn(&["worker"], &config, &[]);
    wait_for("100,000 jobs to succeed", Duration::from_secs(240), || async {
        let c = q.counts().await.ok()?;
        (c.succeeded_total == 100_000).then_some(())
    })
    .await;
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.scheduled, c.queued, c.running, c.retrying, c.dead),
        (0, 0, 0, 0, 0),
        "{c:?}"
    );
}

#[tokio::test]
async fn a_worker_refuses_a_redis_that_may_evict_keys() {
    let redis = PrivateRedis::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let db = TestDb::create().await;
    let config = config(&redis, &db);
    let mut refused = Proc::spawn(&["worker"], &config, &[]);
    let (ok, stderr) = refused.wait_output();
    assert!(!ok);
    assert!(
        stderr.contains("noeviction") && stderr.contains("allkeys-lru"),
        "{stderr}"
    );

    // The explicit development override lets it start.
    let allowed = Proc::spawn(&["worker"], &config, &[("NIGHTSHIFT_ALLOW_EVICTION", "1")]);
    let q = queue(&redis, "default").await;
    let id = q.push(NewJob::new("noop", "{}")).await.unwrap();
    wait_for("the job to succeed", Duration::from_secs(15), || async {
        (q.inspect(&id).await.ok()??.state == JobState::Succeeded).then_some(())
    })
    .await;
    drop(allowed);
}

#[tokio::test]
async fn a_worker_serves_liveness_and_prometheus_metrics_on_its_ops_address() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _worker = Proc::spawn(&["worker"], &config, &[("NIGHTSHIFT_OPS_ADDR", addr.as_str())]);
    let q = queue(&redis, "default").await;
    let id = q.push(NewJob::new("noop", "{}")).await.unwrap();
    wait_for("the job to succeed", Duration::from_secs(15), || async {
        (q.inspect(&id).await.ok()??.state == JobState::Succeeded).then_some(())
    })
    .await;
    let http = reqwest::Client::new();
    let live = http.get(format!("http://{addr}/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let metrics = wait_for("job and queue metrics", Duration::from_secs(15), || async {
        let body = http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (body.contains("nightshift_queue_jobs") && body.contains("nightshift_jobs_total")).then_some(body)
    })
    .await;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("nightshift_jobs_total")
                && l.contains(r#"kind="noop""#)
                && l.contains(r#"outcome="succeeded""#)
        })
        .unwrap_or_else(|| panic!("no noop success counter in:\n{metrics}"));
    assert!(line.ends_with(" 1"), "{line}");
}

#[tokio::test]
async fn bad_settings_stop_a_worker_with_an_error_naming_the_variable() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    for (var, value) in [
        ("NIGHTSHIFT_LEASE_SECS", "-1"),
        ("NIGHTSHIFT_FETCH_BATCH", "0"),
        ("NIGHTSHIFT_REAP_INTERVAL_SECS", "0"),
        ("NIGHTSHIFT_CASHFLOW_DEBOUNCE_SECS", "-1"),
        ("NIGHTSHIFT_MAX_CONNECTIONS_PER_IP", "many"),
    ] {
        let mut worker = Proc::spawn(&["worker"], &config, &[(var, value)]);
        let (ok, log) = worker.wait_output();
        assert!(!ok, "{var}={value} was accepted");
        assert!(log.contains(var) && !log.contains("panicked"), "{var}={value}:\n{log}");
    }
}

/// `NIGHTSHIFT_CASHFLOW_DEBOUNCE_SECS=0` is documented as "project after every change": it
/// starts (it was refused at start-up), and the ops port answers readiness for the API.
#[tokio::test]
async fn an_api_with_no_cashflow_debounce_starts_and_answers_readiness_on_its_ops_port() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let ops = format!("127.0.0.1:{}", free_port());
    let (_api, _addr) = Proc::spawn_serving(
        &["api"],
        &config,
        &[
            ("NIGHTSHIFT_CASHFLOW_DEBOUNCE_SECS", "0"),
            ("NIGHTSHIFT_OPS_ADDR", ops.as_str()),
        ],
    )
    .await;
    let ready = reqwest::get(format!("http://{ops}/health/ready")).await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap_or_default());
}

//! The queue backend's guarantees, against a private Redis.
use std::{task::Poll, time::Duration};

use apalis_core::{backend::Backend, worker::context::WorkerContext};
use nightshift_queue::{Backoff, JobState, NewJob, QueueError, RedisBackend, WorkerIdentity, WorkerOptions};
use serde_json::Value;

use crate::support::*;

async fn state_of(q: &nightshift_queue::Queue, id: &str) -> Option<JobState> {
    q.inspect(id).await.ok().flatten().map(|r| r.state)
}

#[tokio::test]
async fn an_idle_worker_is_woken_by_a_push_not_by_polling() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    // With an hour between polls, only the push notification can start the job in time.
    config.queue.idle_poll = Duration::from_secs(3600);
    let app = App::start(&config, true).await;
    let q = queue(&redis, "default").await;
    // Let the worker go idle first: a first job proves it is up and polling has happened.
    let warmup = q.push(NewJob::new("noop", "{}")).await.unwrap();
    wait_for("warm-up job", Duration::from_secs(10), || async {
        (state_of(&q, &warmup).await? == JobState::Succeeded).then_some(())
    })
    .await;
    for _ in 0..5 {
        let id = q.push(NewJob::new("noop", "{}")).await.unwrap();
        wait_for("woken job", Duration::from_secs(10), || async {
            (state_of(&q, &id).await? == JobState::Succeeded).then_some(())
        })
        .await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_stalled_workers_late_outcome_is_refused_after_its_job_ran_elsewhere() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let q = queue(&redis, "default").await;
    let mut stalled = Proc::spawn(&["worker"], &config, &[]);
    let id = q
        .push(NewJob::new("diag.sleep", r#"{"ms": 1500}"#).max_attempts(3))
        .await
        .unwrap();
    wait_for("job running", Duration::from_secs(10), || async {
        (state_of(&q, &id).await? == JobState::Running).then_some(())
    })
    .await;
    stalled.signal("STOP");
    let _healthy = Proc::spawn(&["worker"], &config, &[]);
    wait_for("job done by the healthy worker", Duration::from_secs(20), || async {
        (state_of(&q, &id).await? == JobState::Succeeded).then_some(())
    })
    .await;
    stalled.signal("CONT");
    stalled.signal("TERM");
    let (_, log) = stalled.wait_output();
    let rec = q.inspect(&id).await.unwrap().unwrap();
    assert_eq!((rec.state, rec.attempts), (JobState::Succeeded, 2));
    let result: Value = serde_json::from_str(rec.result.as_deref().unwrap()).unwrap();
    assert_eq!(result["attempt"], 2, "the outcome on record is the second run's");
    assert!(
        log.contains("ack refused") || log.contains("lease lost"),
        "the stalled worker learned it no longer owned the job:\n{log}"
    );
}

#[tokio::test]
async fn operators_can_cancel_retry_and_discard_and_a_paused_queue_starts_nothing() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), true).await;
    let q = queue(&redis, "default").await;

    // A job of a kind nobody knows dies on its first attempt; retry runs it once more.
    let ghost = q.push(NewJob::new("ghost", "{}").max_attempts(1)).await.unwrap();
    wait_for("ghost dead", Duration::from_secs(10), || async {
        (state_of(&q, &ghost).await? == JobState::Dead).then_some(())
    })
    .await;
    assert_eq!(q.list(JobState::Dead, 0, 10).await.unwrap().len(), 1);
    assert_eq!(q.retry(&ghost).await.unwrap(), JobState::Queued);
    wait_for("ghost dead again", Duration::from_secs(10), || async {
        let r = q.inspect(&ghost).await.ok()??;
        (r.state == JobState::Dead && r.attempts == 2).then_some(())
    })
    .await;
    q.discard(&ghost).await.unwrap();
    assert!(q.inspect(&ghost).await.unwrap().is_none());
    assert!(matches!(q.discard(&ghost).await, Err(QueueError::NotFound(_))));

    // A scheduled job cancelled before its time never runs.
    let later = q
        .push(NewJob::new("noop", "{}").delay(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(q.list(JobState::Scheduled, 0, 10).await.unwrap()[0].id, later);
    assert_eq!(q.cancel(&later).await.unwrap(), JobState::Cancelled);
    assert_eq!(q.counts().await.unwrap().scheduled, 0);
    assert!(matches!(
        q.cancel(&later).await,
        Err(QueueError::InvalidTransition { .. })
    ));

    // Paused: a pushed job stays queued; resumed: it runs.
    q.pause().await.unwrap();
    assert!(q.counts().await.unwrap().paused);
    let held = q.push(NewJob::new("noop", "{}")).await.unwrap();
    let started = tokio::time::timeout(
        Duration::from_millis(1500),
        wait_for("held job to start", Duration::from_secs(5), || async {
            (state_of(&q, &held).await? != JobState::Queued).then_some(())
        }),
    )
    .await;
    assert!(started.is_err(), "a job started on a paused queue");
    q.resume().await.unwrap();
    wait_for("held job done", Duration::from_secs(10), || async {
        (state_of(&q, &held).await? == JobState::Succeeded).then_some(())
    })
    .await;

    // A running job asked to cancel stops at its next lease renewal.
    let long = q.push(NewJob::new("diag.sleep", r#"{"ms": 60000}"#)).await.unwrap();
    wait_for("long job running", Duration::from_secs(10), || async {
        (state_of(&q, &long).await? == JobState::Running).then_some(())
    })
    .await;
    assert_eq!(q.cancel(&long).await.unwrap(), JobState::Running);
    wait_for("long job cancelled", Duration::from_secs(10), || async {
        (state_of(&q, &long).await? == JobState::Cancelled).then_some(())
    })
    .await;

    let workers = nightshift_queue::list_workers(&mut q.connection(), "nstest", 10_000)
        .await
        .unwrap();
    assert!(workers.iter().any(|w| w.pid == std::process::id()), "{workers:?}");
    app.stop().await;
}

#[tokio::test]
async fn leased_jobs_not_yet_started_go_back_to_the_queue_when_the_backend_closes() {
    let redis = PrivateRedis::start();
    let q = queue(&redis, "default").await;
    for _ in 0..5 {
        q.push(NewJob::new("noop", "{}")).await.unwrap();
    }
    let options = WorkerOptions {
        concurrency: 5,
        backoff: |_| Backoff::default(),
        identity: WorkerIdentity::generate(),
        span_hook: None,
    };
    let mut backend = RedisBackend::start(q.clone(), &redis.url(), options, None)
        .await
        .unwrap();
    let ctx = WorkerContext::new("manual");
    // One poll leases all five (its free slots) and hands out one; four wait in the buffer.
    let first = std::future::poll_fn(|cx| match backend.poll_next(cx, &ctx) {
        Poll::Ready(Some(Ok(task))) => Poll::Ready(task),
        Poll::Ready(other) => panic!("unexpected {:?}", other.map(|r| r.map(|_| ()))),
        Poll::Pending => Poll::Pending,
    })
    .await;
    assert_eq!(first.args.attempt, 1);
    assert_eq!(q.counts().await.unwrap().running, 5);

    std::future::poll_fn(|cx| backend.poll_close(cx, &ctx)).await.unwrap();
    let c = q.counts().await.unwrap();
    assert_eq!((c.running, c.queued), (1, 4), "only the handed-out job keeps its lease");
    for r in q.list(JobState::Queued, 0, 10).await.unwrap() {
        assert_eq!(r.attempts, 0, "a released job's attempt is not counted");
    }
}

#[tokio::test]
async fn redis_keys_of_a_queue_share_one_cluster_slot() {
    let redis = PrivateRedis::start();
    let q = queue(&redis, "emails").await;
    let id = q
        .push(
            NewJob::new("noop", "{}")
                .delay(Duration::from_secs(60))
                .idempotency_key("k1"),
        )
        .await
        .unwrap();
    let mut conn = q.connection();
    let keys: Vec<String> = redis::cmd("KEYS").arg("nstest:*").query_async(&mut conn).await.unwrap();
    assert!(keys.len() >= 3, "{keys:?}");
    // Ask a cluster-mode Redis where each key would live.
    let nodes = std::env::temp_dir().join(format!("nodes-{}.conf", uuid::Uuid::new_v4().simple()));
    let cluster = PrivateRedis::start_with(&[
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        nodes.to_str().unwrap(),
    ]);
    let mut cconn = redis::Client::open(cluster.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut slots = std::collections::HashSet::new();
    for k in &keys {
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(k)
            .query_async(&mut cconn)
            .await
            .unwrap();
        slots.insert(slot);
    }
    drop(cluster);
    let _ = std::fs::remove_file(nodes);
    assert_eq!(slots.len(), 1, "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with(&id)));
}

#[tokio::test]
async fn a_job_whose_payload_is_not_json_does_not_wedge_the_history() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), true).await;
    let q = queue(&redis, "default").await;
    // Pushed through the library, not the API: the queue carries any text.
    let bad = q.push(NewJob::new("noop", "not json").max_attempts(1)).await.unwrap();
    let good = q.push(NewJob::new("noop", "{}")).await.unwrap();
    let pool = db.pool().await;
    let recorded = wait_for("both jobs in history", Duration::from_secs(15), || async {
        let rows: Vec<(String, String, Option<Value>)> =
            sqlx::query_as("SELECT id::text, state, payload FROM job_history ORDER BY id")
                .fetch_all(&pool)
                .await
                .ok()?;
        (rows.len() == 2).then_some(rows)
    })
    .await;
    let row = |id: &str| recorded.iter().find(|r| r.0 == id).unwrap().clone();
    assert_eq!((row(&bad).1.as_str(), row(&bad).2), ("dead", None));
    assert_eq!(
        (row(&good).1.as_str(), row(&good).2),
        ("succeeded", Some(serde_json::json!({})))
    );
    app.stop().await;
}

#[tokio::test]
async fn at_maxmemory_enqueues_get_503_and_nothing_accepted_is_evicted() {
    let redis = PrivateRedis::start_with(&["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"]);
    let db = TestDb::create().await;
    let app = App::start(&config(&redis, &db), false).await;
    let token = token(&[
        nightshift_common::auth::Scope::JobsWrite,
        nightshift_common::auth::Scope::JobsRead,
    ]);
    // Delayed jobs with 40 KB payloads fill 3 MB within a hundred or so.
    let big = serde_json::json!({
        "kind": "diag.fail", "payload": {"message": "x".repeat(40_000)}, "delay_secs": 3600
    });
    let mut accepted = Vec::new();
    let refusal = loop {
        assert!(accepted.len() < 2_000, "Redis never reached its maxmemory");
        let resp = app.enqueue(&token, big.clone(), None).await;
        if resp.status() != 202 {
            break resp;
        }
        accepted.push(resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    };
    assert!(!accepted.is_empty());
    assert_eq!(
        refusal.status(),
        503,
        "a full Redis is a 503, never a 2xx for work not stored"
    );
    let body: Value = refusal.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    // Every accepted job is still there: nothing was evicted to make room.
    let q = queue(&redis, "default").await;
    assert_eq!(q.counts().await.unwrap().scheduled as usize, accepted.len());
    for id in &accepted {
        assert!(
            state_of(&q, id).await.is_some(),
            "{id} was accepted and must still be in Redis"
        );
    }
    app.stop().await;
}

/// A handler that panics for kind `panics` and outlives its 50 ms timeout for kind `slow`.
#[derive(Clone)]
struct Misbehaves;

impl tower_service::Service<apalis_core::task::Task<nightshift_queue::Job>> for Misbehaves {
    type Response = nightshift_queue::Outcome;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;
    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, task: apalis_core::task::Task<nightshift_queue::Job>) -> Self::Future {
        let kind = task.args.kind.clone();
        Box::pin(async move {
            if kind == "panics" {
                panic!("a handler bug");
            }
            // Never finishes: only its timeout ends it.
            std::future::pending::<()>().await;
            Ok(nightshift_queue::Outcome::Succeeded(None))
        })
    }
}

/// A kind's backoff applies to its panics and timeouts, not only to the errors its handler
/// returns: with an hour's backoff, both wait at least half an hour (the worker's default
/// would have been a second).
#[tokio::test]
async fn a_panic_and_a_timeout_retry_after_the_kinds_backoff() {
    use apalis_core::worker::builder::WorkerBuilder;
    let redis = PrivateRedis::start();
    let q = queue(&redis, "default").await;
    let hour = |kind: &str| match kind {
        "panics" | "slow" => Backoff {
            base: Duration::from_secs(3600),
            max: Duration::from_secs(7200),
        },
        _ => Backoff::default(),
    };
    let options = WorkerOptions {
        concurrency: 2,
        backoff: hour,
        identity: WorkerIdentity::generate(),
        span_hook: None,
    };
    let backend = RedisBackend::start(q.clone(), &redis.url(), options, None)
        .await
        .unwrap();
    let worker = WorkerBuilder::new("misbehaving").backend(backend).build(Misbehaves);
    let stop = tokio_util::sync::CancellationToken::new();
    let signal = stop.clone();
    let running = tokio::spawn(worker.run_until(async move {
        signal.cancelled().await;
        Ok::<(), std::io::Error>(())
    }));
    let panics = q.push(NewJob::new("panics", "{}").max_attempts(3)).await.unwrap();
    let slow = q
        .push(
            NewJob::new("slow", "{}")
                .max_attempts(3)
                .timeout(Duration::from_millis(50)),
        )
        .await
        .unwrap();
    let conn = q.connection();
    for id in [&panics, &slow] {
        let retry_key = q.job_key(id).replace(&format!(":job:{id}"), ":retry");
        let (due, finished) = wait_for("the job to be retrying", Duration::from_secs(20), || {
            let (q, mut conn, retry_key) = (q.clone(), conn.clone(), retry_key.clone());
            async move {
                let r = q.inspect(id).await.ok()??;
                let due: Option<f64> = redis::cmd("ZSCORE")
                    .arg(&retry_key)
                    .arg(id)
                    .query_async(&mut conn)
                    .await
                    .ok()?;
                (r.state == JobState::Retrying).then_some((due? as i64, r.finished_at_ms?))
            }
        })
        .await;
        assert!(
            due - finished >= 30 * 60 * 1000,
            "{id} retries {} ms after it failed",
            due - finished
        );
    }
    drop(conn);
    stop.cancel();
    let _ = running.await;
}

//! The chaos runner's steady load: one enqueue attempt every 1/rate seconds over HTTP, each
//! attempt's status kept, since only a 2xx means the platform took the job.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;

/// One enqueue attempt as the client saw it.
#[derive(Debug)]
pub(crate) struct Sent {
    pub kind: &'static str,
    pub key: Option<String>,
    pub started: Instant,
    pub ended: Instant,
    /// None when no HTTP answer came (connection refused, timeout).
    pub status: Option<u16>,
    pub id: Option<uuid::Uuid>,
}

impl Sent {
    pub fn accepted(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s)) && self.id.is_some()
    }
}

pub(crate) struct Enqueuer {
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<Vec<Sent>>,
}

/// Every n-th attempt is an aborting job, until `abort_jobs` were sent.
const ABORT_EVERY: u64 = 300;

/// The i-th job of the mix: mostly fenced effects under unique business keys, held a little so
/// faults land mid-job, a tenth of them under one of seven concurrency keys (limit 2); some
/// debounced effects, whose requests fold into one job per key and window (all carrying the
/// key's business key, so a folded request is lost only if its key's effect never happens);
/// some sleeps; some that always fail (must end dead, not lost).
fn job(i: u64, run: &str, aborts_left: &mut usize) -> (&'static str, Option<String>, serde_json::Value) {
    if *aborts_left > 0 && i.is_multiple_of(ABORT_EVERY) {
        *aborts_left -= 1;
        return (
            "diag.abort",
            None,
            serde_json::json!({"kind": "diag.abort", "payload": {}}),
        );
    }
    if i % 40 == 13 {
        let body = serde_json::json!({"kind": "diag.fail", "payload": {"message": "chaos"}, "max_attempts": 2});
        return ("diag.fail", None, body);
    }
    if i % 25 == 7 {
        let ms = rand::random_range(0..1500u64);
        let body = serde_json::json!({"kind": "diag.sleep", "payload": {"ms": ms}, "max_attempts": 10});
        return ("diag.sleep", None, body);
    }
    if i % 50 == 21 {
        let g = (i / 50) % 5;
        let key = format!("chaos-{run}-debounced-{g}");
        let body = serde_json::json!({
            "kind": "diag.effect", "payload": {"key": key, "ms": 50}, "max_attempts": 10,
            "dedupe": {"key": format!("debounced-{g}"), "mode": "debounce", "secs": 1},
        });
        return ("diag.effect", Some(key), body);
    }
    let key = format!("chaos-{run}-{i}");
    let ms = rand::random_range(0..400u64);
    let mut body = serde_json::json!({"kind": "diag.effect", "payload": {"key": key, "ms": ms}, "max_attempts": 10});
    if i % 10 == 3 {
        body["concurrency_key"] = format!("chaos-{}", i % 7).into();
        body["concurrency_limit"] = 2.into();
    }
    ("diag.effect", Some(key), body)
}

impl Enqueuer {
    pub fn start(http: reqwest::Client, api: String, token: String, rate: u64, abort_jobs: usize) -> Self {
        let stop = CancellationToken::new();
        let cancelled = stop.clone();
        let handle = tokio::spawn(async move {
            let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
            let url = format!("{api}/v1/jobs");
            // Requests stuck on a dead Redis must not stop the steady rate: up to 64 in flight.
            let slots = Arc::new(Semaphore::new(64));
            let mut tasks = JoinSet::new();
            let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut aborts_left = abort_jobs;
            for i in 0.. {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = cancelled.cancelled() => break,
                }
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let (kind, key, body) = job(i, &run, &mut aborts_left);
                let (http, url, token) = (http.clone(), url.clone(), token.clone());
                tasks.spawn(async move {
                    let started = Instant::now();
                    let resp = http
                        .post(&url)
                        .bearer_auth(token)
                        .json(&body)
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    let (status, id) = match resp {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let body: serde_json::Value = r.json().await.unwrap_or_default();
                            (Some(status), body["id"].as_str().and_then(|s| s.parse().ok()))
                        }
                        Err(_) => (None, None),
                    };
                    drop(slot);
                    Sent {
                        kind,
                        key,
                        started,
                        ended: Instant::now(),
                        status,
                        id,
                    }
                });
            }
            tasks.join_all().await
        });
        Enqueuer { stop, handle }
    }

    /// Stops sending and returns every attempt once the last answer came.
    pub async fn stop(self) -> Vec<Sent> {
        self.stop.cancel();
        self.handle.await.unwrap_or_default()
    }
}

//! Enqueue-to-start latency at a fixed rate, on an in-process worker over the real backend, so
//! the start instant is read without a clock round trip.
use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use anyhow::bail;
use apalis_core::{task::Task, worker::builder::WorkerBuilder};
use futures::future::BoxFuture;
use nightshift_queue::{Backoff, Job, Outcome, Queue, RedisBackend, WorkerIdentity, WorkerOptions};
use tower_service::Service;

use super::{BenchArgs, Ctx, noop};

/// The handler of the latency run: notes when each job started.
#[derive(Clone)]
struct Stamp(Arc<Mutex<HashMap<String, Instant>>>);

impl Service<Task<Job>> for Stamp {
    type Response = Outcome;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Outcome, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, task: Task<Job>) -> Self::Future {
        self.0
            .lock()
            .expect("stamps")
            .insert(task.args.id.clone(), Instant::now());
        Box::pin(async { Ok(Outcome::Succeeded(None)) })
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

pub(super) async fn latency(ctx: &Ctx, queue: &Queue, args: &BenchArgs) -> anyhow::Result<()> {
    let stamps = Stamp(Arc::new(Mutex::new(HashMap::new())));
    let options = WorkerOptions {
        concurrency: 64,
        backoff: |_| Backoff::default(),
        identity: WorkerIdentity::generate(),
        span_hook: None,
    };
    let backend = RedisBackend::start(queue.clone(), &ctx.config.redis_url, options, None).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = WorkerBuilder::new("bench-latency")
        .backend(backend)
        .build(stamps.clone());
    let signal = stop.clone();
    let running = tokio::spawn(worker.run_until(async move {
        signal.cancelled().await;
        Ok::<(), std::io::Error>(())
    }));
    // Let the worker subscribe before measuring.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let total = args.rate * args.seconds;
    let mut pushed: Vec<(String, Instant)> = Vec::with_capacity(total as usize);
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / args.rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for _ in 0..total {
        tick.tick().await;
        let job = noop();
        let id = job.id.clone();
        let at = Instant::now();
        queue.push(job).await?;
        pushed.push((id, at));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while stamps.0.lock().expect("stamps").len() < pushed.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    let _ = running.await;
    let seen = stamps.0.lock().expect("stamps");
    let mut lat: Vec<Duration> = pushed
        .iter()
        .filter_map(|(id, at)| seen.get(id).map(|s| s.saturating_duration_since(*at)))
        .collect();
    lat.sort();
    if lat.is_empty() {
        bail!("no job started during the latency run");
    }
    println!(
        "latency enqueue->start at {} jobs/s for {}s ({} jobs, {} started): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.rate,
        args.seconds,
        pushed.len(),
        lat.len(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.90).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3,
    );
    Ok(())
}

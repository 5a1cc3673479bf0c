//! `nightshift bench-flow`: flow control measured on one worker process. A priority-0 job
//! pushed while a priority-5 backlog drains, against a priority-5 job pushed at the same
//! instant; then debounced pushes over a set of keys, and how many runs they make.
use std::time::{Duration, Instant};

use anyhow::bail;
use nightshift_common::Config;
use nightshift_queue::{Dedupe, DedupeMode, NewJob, Queue};

use super::{Ctx, noop, stop_child};

#[derive(Debug, clap::Args)]
pub struct FlowBenchArgs {
    /// Priority-5 jobs queued before the worker starts.
    #[arg(long, default_value_t = 200_000)]
    pub backlog: usize,
    /// Priority-0 jobs (and as many priority-5 ones) pushed one by one while it drains.
    #[arg(long, default_value_t = 200)]
    pub urgent: usize,
    /// Debounced pushes.
    #[arg(long, default_value_t = 100_000)]
    pub debounced: usize,
    /// The keys they are spread over.
    #[arg(long, default_value_t = 1_000)]
    pub keys: usize,
    /// Worker concurrency.
    #[arg(long, default_value_t = 512)]
    pub concurrency: usize,
}

pub async fn run(config: &Config, args: FlowBenchArgs) -> anyhow::Result<()> {
    let ctx = Ctx::create(config).await?;
    let result = bench(&ctx, &args).await;
    ctx.remove().await?;
    result
}

/// Waits until the queue holds nothing queued, scheduled or running.
async fn drained(queue: &Queue) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let c = queue.counts().await?;
        if c.queued + c.scheduled + c.running + c.retrying == 0 {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!("the queue did not drain: {c:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

async fn bench(ctx: &Ctx, args: &FlowBenchArgs) -> anyhow::Result<()> {
    let conn = nightshift_queue::connect_redis(&ctx.config.redis_url).await?;
    let queue = ctx.queue(&conn);

    // Priority: the backlog first, then pairs of one urgent and one ordinary job while the
    // worker drains it.
    let backlog: Vec<NewJob> = (0..args.backlog).map(|_| noop()).collect();
    queue.push_bulk(&backlog).await?;
    let child = ctx.spawn_worker(args.concurrency, false)?;
    while queue.counts().await?.succeeded_total == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (mut urgent, mut ordinary) = (Vec::new(), Vec::new());
    for _ in 0..args.urgent {
        urgent.push(queue.push(noop().priority(0)).await?);
        ordinary.push(queue.push(noop()).await?);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let left = queue.counts().await?.queued;
    drained(&queue).await?;
    let waits = |ids: Vec<String>| {
        let queue = queue.clone();
        async move {
            let mut waits = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(r) = queue.inspect(&id).await? {
                    waits.push(r.started_at_ms.unwrap_or(r.created_at_ms) - r.created_at_ms);
                }
            }
            waits.sort_unstable();
            anyhow::Ok(waits)
        }
    };
    let (urgent, ordinary) = (waits(urgent).await?, waits(ordinary).await?);
    if urgent.is_empty() || ordinary.is_empty() {
        bail!("no job record was left to read");
    }
    println!(
        "priority 0 through a {}-job priority-5 backlog: enqueue->start p50 {} ms, p99 {} ms, max {} ms ({} jobs; {left} still queued after the last)",
        args.backlog,
        percentile(&urgent, 0.5),
        percentile(&urgent, 0.99),
        urgent.last().unwrap_or(&0),
        urgent.len(),
    );
    println!(
        "priority 5 pushed at the same instants:       enqueue->start p50 {} ms, p99 {} ms",
        percentile(&ordinary, 0.5),
        percentile(&ordinary, 0.99),
    );

    // Debounce: every push under one of `keys` keys, a one-second window.
    let before = queue.counts().await?.succeeded_total;
    let jobs: Vec<NewJob> = (0..args.debounced)
        .map(|i| {
            noop().dedupe(Dedupe {
                key: format!("key-{}", i % args.keys.max(1)),
                mode: DedupeMode::Debounce,
                window: Duration::from_secs(1),
            })
        })
        .collect();
    let t = Instant::now();
    let pushed = queue.push_many(&jobs).await?;
    let took = t.elapsed();
    let made = pushed.iter().filter(|p| !p.deduplicated).count();
    drained(&queue).await?;
    // Past another window: nothing more may run.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let runs = queue.counts().await?.succeeded_total - before;
    stop_child(child).await;
    println!(
        "debounce: {} pushes over {} keys in {:.2}s ({:.0} pushes/s, 1,000 a call): {made} jobs made, {runs} runs",
        args.debounced,
        args.keys,
        took.as_secs_f64(),
        args.debounced as f64 / took.as_secs_f64(),
    );
    Ok(())
}

//! `nightshift bench-flow`: flow control measured on one worker process. A priority-0 job
//! pushed while a priority-5 backlog drains, against a priority-5 job pushed at the same
//! instant; debounced pushes over a set of keys, and how many runs they make; jobs under
//! concurrency keys against the same jobs without; and a small group's wait behind a big
//! group's backlog, with groups and without.
use std::time::{Duration, Instant};

use anyhow::bail;
use nightshift_common::Config;
use nightshift_queue::{Dedupe, DedupeMode, NewJob, Queue};

use super::{Ctx, drain_rate, noop, stop_child};

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
    /// Jobs under concurrency keys (limit 1), and as many without, drained from a paused start.
    #[arg(long, default_value_t = 200_000)]
    pub keyed: usize,
    /// The distinct concurrency keys they are spread over.
    #[arg(long, default_value_t = 1_000)]
    pub concurrency_keys: usize,
    /// Group A's backlog; group B then pushes `--small-group` jobs one by one.
    #[arg(long, default_value_t = 100_000)]
    pub big_group: usize,
    #[arg(long, default_value_t = 100)]
    pub small_group: usize,
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
        async move { start_waits(&queue, ids).await }
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
    println!(
        "debounce: {} pushes over {} keys in {:.2}s ({:.0} pushes/s, 1,000 a call): {made} jobs made, {runs} runs",
        args.debounced,
        args.keys,
        took.as_secs_f64(),
        args.debounced as f64 / took.as_secs_f64(),
    );

    // Concurrency keys: the same drain with and without them, alternated, from a paused start.
    let keys = args.concurrency_keys.max(1);
    for round in 0..2 {
        for keyed in [false, true] {
            let jobs: Vec<NewJob> = (0..args.keyed)
                .map(|i| match keyed {
                    true => noop().concurrency(format!("ck-{}", i % keys), 1),
                    false => noop(),
                })
                .collect();
            let rate = drain_rate(&queue, &jobs).await?;
            let what = if keyed {
                format!("{keys} concurrency keys, limit 1")
            } else {
                "no flow fields".to_string()
            };
            println!(
                "round {}: {} jobs, {what:<32}: {rate:>8.0} jobs/s",
                round + 1,
                args.keyed
            );
        }
    }
    let leaks = queue.slot_leaks().await?;
    println!("slots held after the drains: {}", leaks.len());

    // Groups: B's jobs pushed one by one while A's backlog drains, with groups and without.
    for grouped in [true, false] {
        let big: Vec<NewJob> = (0..args.big_group)
            .map(|_| if grouped { noop().group("A") } else { noop() })
            .collect();
        queue.pause().await?;
        queue.push_bulk(&big).await?;
        let started = queue.counts().await?.succeeded_total;
        queue.resume().await?;
        while queue.counts().await?.succeeded_total == started {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut small = Vec::new();
        for _ in 0..args.small_group {
            small.push(queue.push(if grouped { noop().group("B") } else { noop() }).await?);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drained(&queue).await?;
        let waits = start_waits(&queue, small).await?;
        if waits.is_empty() {
            bail!("no job record was left to read");
        }
        println!(
            "group B ({} jobs) behind group A's {}-job backlog, {}: enqueue->start p50 {} ms, p99 {} ms",
            args.small_group,
            args.big_group,
            if grouped { "with groups   " } else { "without groups" },
            percentile(&waits, 0.5),
            percentile(&waits, 0.99),
        );
    }
    stop_child(child).await;
    Ok(())
}

/// Each job's enqueue->start wait in ms, sorted.
async fn start_waits(queue: &Queue, ids: Vec<String>) -> anyhow::Result<Vec<i64>> {
    let mut waits = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(r) = queue.inspect(&id).await? {
            waits.push(r.started_at_ms.unwrap_or(r.created_at_ms) - r.created_at_ms);
        }
    }
    waits.sort_unstable();
    Ok(waits)
}

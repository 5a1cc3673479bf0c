//! `nightshift bench-progress`: what progress reports cost. The same `diag.sleep` jobs, each
//! reporting ten times a second or quiet, drained from a paused start by one worker process
//! (history on), alternated; the rate and the worker's CPU time per job for each.
use nightshift_common::Config;
use nightshift_queue::NewJob;

use super::{Ctx, cpu_secs, drain_rate, stop_child};

#[derive(Debug, clap::Args)]
pub struct ProgressBenchArgs {
    /// Jobs per drain.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: usize,
    /// How long each job runs, reporting every 100 ms (10 a second) unless quiet.
    #[arg(long, default_value_t = 1000)]
    pub job_ms: u64,
    /// Rounds of the two drains, alternated.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    #[arg(long, default_value_t = 2000)]
    pub concurrency: usize,
}

pub async fn run(config: &Config, args: ProgressBenchArgs) -> anyhow::Result<()> {
    let ctx = Ctx::create(config).await?;
    let result = bench(&ctx, &args).await;
    ctx.remove().await?;
    result
}

async fn bench(ctx: &Ctx, args: &ProgressBenchArgs) -> anyhow::Result<()> {
    let conn = nightshift_queue::connect_redis(&ctx.config.redis_url).await?;
    let queue = ctx.queue(&conn);
    let child = ctx.spawn_worker(args.concurrency, true)?;
    let pid = child.id().unwrap_or_default();
    println!(
        "{} jobs of {} ms per drain, concurrency {}, history on",
        args.jobs, args.job_ms, args.concurrency
    );
    for round in 1..=args.rounds {
        for quiet in [true, false] {
            let cpu = cpu_secs(pid);
            let jobs: Vec<NewJob> = (0..args.jobs).map(|_| sleeper(args.job_ms, quiet)).collect();
            let rate = drain_rate(&queue, &jobs).await?;
            let cpu_us = (cpu_secs(pid) - cpu) * 1e6 / args.jobs as f64;
            let what = if quiet { "quiet    " } else { "reporting" };
            println!("round {round}: {what}: {rate:>8.0} jobs/s, worker CPU {cpu_us:>6.0} µs/job");
        }
    }
    stop_child(child).await;
    Ok(())
}

fn sleeper(ms: u64, quiet: bool) -> NewJob {
    let payload = serde_json::json!({ "ms": ms, "quiet": quiet });
    NewJob::new("diag.sleep", payload.to_string()).max_attempts(3)
}

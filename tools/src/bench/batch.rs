//! `nightshift bench-batch`: the cost of a batch on one worker process (history on). The same
//! no-op jobs drained from a paused start without a batch and in one, alternated; then how
//! long after the last job's end its batch's callback started.
use std::time::{Duration, Instant};

use anyhow::bail;
use nightshift_common::{
    Config,
    batches::{self, Callback, NewBatch},
};
use nightshift_queue::{NewJob, Queue};
use redis::AsyncCommands;
use sqlx::PgPool;

use super::{Ctx, noop, push_paused, resume_until_done, stop_child};

#[derive(Debug, clap::Args)]
pub struct BatchBenchArgs {
    /// Jobs in the batch (and as many without one).
    #[arg(long, default_value_t = 100_000)]
    pub jobs: usize,
    /// Rounds of the two drains, alternated.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    #[arg(long, default_value_t = 512)]
    pub concurrency: usize,
}

pub async fn run(config: &Config, args: BatchBenchArgs) -> anyhow::Result<()> {
    let ctx = Ctx::create(config).await?;
    let result = bench(&ctx, &args).await;
    ctx.remove().await?;
    result
}

async fn bench(ctx: &Ctx, args: &BatchBenchArgs) -> anyhow::Result<()> {
    let conn = nightshift_queue::connect_redis(&ctx.config.redis_url).await?;
    let queue = ctx.queue(&conn);
    let db = nightshift_common::db::connect(&ctx.bench_db_url, 4).await?;
    let child = ctx.spawn_worker(args.concurrency, true)?;
    for round in 1..=args.rounds {
        for in_batch in [false, true] {
            let (rate, callback) = drain(&queue, &db, args.jobs, in_batch).await?;
            let what = if in_batch { "in one batch" } else { "no batch    " };
            match callback {
                Some(ms) => println!(
                    "round {round}: {} jobs {what}: {rate:>8.0} jobs/s; callback started {ms} ms after the last job ended",
                    args.jobs
                ),
                None => println!("round {round}: {} jobs {what}: {rate:>8.0} jobs/s", args.jobs),
            }
        }
    }
    stop_child(child).await;
    Ok(())
}

/// Pushes `n` no-ops into the paused queue (in a sealed batch with a no-op callback when
/// `in_batch`), resumes it and times the drain. Returns the rate, and the callback's start
/// after the last job's end in ms.
async fn drain(queue: &Queue, db: &PgPool, n: usize, in_batch: bool) -> anyhow::Result<(f64, Option<i64>)> {
    let batch = uuid::Uuid::now_v7();
    let mut jobs: Vec<NewJob> = (0..n).map(|_| noop()).collect();
    if in_batch {
        let ids: Vec<uuid::Uuid> = jobs.iter().filter_map(|j| j.id.parse().ok()).collect();
        let b = NewBatch {
            id: batch,
            submitted_by: None,
            submitted_user: None,
            description: Some("bench".into()),
            on_complete: Some(Callback {
                kind: "noop".into(),
                payload: serde_json::json!({}),
            }),
            on_success: None,
            sealed: true,
            traceparent: None,
        };
        batches::create(db, &b, &ids, None).await?;
        jobs = jobs.into_iter().map(|j| j.batch(batch.to_string())).collect();
    }
    let before = push_paused(queue, &jobs).await?;
    let rate = resume_until_done(queue, before, n).await?;
    let t = Instant::now();
    if !in_batch {
        return Ok((rate, None));
    }
    // The callback's start, against the last finish before it in the `done` set.
    let started = loop {
        let job: Option<uuid::Uuid> = sqlx::query_scalar("SELECT complete_job FROM batches WHERE id = $1")
            .bind(batch)
            .fetch_one(db)
            .await?;
        if let Some(id) = job
            && let Some(rec) = queue.inspect(&id.to_string()).await?
            && let Some(s) = rec.started_at_ms
        {
            break s;
        }
        if t.elapsed() > Duration::from_secs(600) {
            bail!("no callback started");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let mut conn = queue.connection();
    let last: Vec<(String, f64)> = conn
        .zrevrangebyscore_limit_withscores(
            format!("{}:{{default}}:done", queue.config().prefix),
            started - 1,
            "-inf",
            0,
            1,
        )
        .await?;
    let last_end = last.first().map_or(started, |(_, s)| *s as i64);
    Ok((rate, Some(started - last_end)))
}

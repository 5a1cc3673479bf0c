//! `nightshift bench`: the figures in the README, measured on this machine. Never run by the
//! test suite: speed is measured, not asserted.
//!
//! Throughput and memory are measured on a real `nightshift worker` child process; latency on
//! an in-process worker over the same backend, so the start instant is read without a clock
//! round trip. Everything lives under a private key prefix and a private database, both
//! removed at the end.
pub mod api;
pub mod backup;
pub mod batch;
pub mod cashflow;
pub mod email;
pub mod flow;
pub mod history;
mod latency;
pub mod progress;
pub mod scale;
pub mod soak;
pub mod traces;

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use nightshift_common::{Config, db};
use nightshift_queue::{NewJob, Queue, connect_redis};
use redis::AsyncCommands;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Jobs pushed one by one.
    #[arg(long, default_value_t = 10_000)]
    pub single: usize,
    /// Jobs pushed in bulk.
    #[arg(long, default_value_t = 100_000)]
    pub bulk: usize,
    /// The small backlog processed by one worker process.
    #[arg(long, default_value_t = 10_000)]
    pub small_backlog: usize,
    /// The large backlog processed by one worker process.
    #[arg(long, default_value_t = 1_000_000)]
    pub large_backlog: usize,
    /// Worker concurrency (jobs in flight per process).
    #[arg(long, default_value_t = 512)]
    pub concurrency: usize,
    /// Steady enqueue rate for the latency run, jobs/s.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

fn noop() -> NewJob {
    NewJob::new("noop", "{}").max_attempts(3)
}

pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// VmRSS and VmHWM (peak) of a process, in KiB.
pub(crate) fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User and system CPU seconds a process has used (/proc counts in USER_HZ, 100 on Linux).
pub(crate) fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

async fn server_pid(conn: &mut nightshift_queue::RedisConn) -> anyhow::Result<u32> {
    let info: String = redis::cmd("INFO").arg("server").query_async(conn).await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

pub(crate) async fn used_memory(conn: &mut nightshift_queue::RedisConn) -> anyhow::Result<i64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

pub(crate) struct Ctx {
    pub(crate) config: Config,
    pub(crate) prefix: String,
    pub(crate) bench_db_url: String,
}

impl Ctx {
    /// A private Redis key prefix and a private, migrated database for one benchmark run.
    pub(crate) async fn create(config: &Config) -> anyhow::Result<Self> {
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        let ctx = Ctx {
            config: config.clone(),
            prefix: format!("nsbench-{suffix}"),
            bench_db_url: db::with_database(&config.database_url, &format!("nightshift_bench_{suffix}"))?,
        };
        db::migrate(&ctx.bench_db_url)
            .await
            .context("creating the bench database")?;
        Ok(ctx)
    }

    /// Removes what `create` made: the prefix's keys and the database.
    pub(crate) async fn remove(&self) -> anyhow::Result<()> {
        let mut conn = connect_redis(&self.config.redis_url).await?;
        cleanup(&mut conn, &self.prefix).await?;
        db::drop_database(&self.bench_db_url).await?;
        Ok(())
    }

    fn queue(&self, conn: &nightshift_queue::RedisConn) -> Queue {
        let mut qc = self.config.queue.clone();
        qc.prefix = self.prefix.clone();
        qc.finished_ttl = Duration::from_secs(600);
        Queue::with_connection(conn.clone(), "default", qc)
    }

    /// Starts `nightshift ROLE` on the bench prefix and database, with `env` on top.
    pub(crate) fn spawn(&self, role: &str, env: &[(&str, &str)]) -> anyhow::Result<tokio::process::Child> {
        Ok(self.command(role, env)?.spawn()?)
    }

    /// `nightshift ROLE` on the bench prefix and database, with `env` on top, not yet started.
    pub(crate) fn command(&self, role: &str, env: &[(&str, &str)]) -> anyhow::Result<tokio::process::Command> {
        let exe = std::env::current_exe()?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg(role)
            .env("REDIS_URL", &self.config.redis_url)
            .env("DATABASE_URL", &self.bench_db_url)
            .env("NIGHTSHIFT_QUEUE_PREFIX", &self.prefix)
            .env("NIGHTSHIFT_FINISHED_TTL_SECS", "600")
            .env(
                "NIGHTSHIFT_ALLOW_EVICTION",
                if self.config.allow_eviction { "1" } else { "0" },
            )
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        Ok(cmd)
    }

    /// Starts `nightshift worker` on the bench prefix.
    pub(crate) fn spawn_worker(&self, concurrency: usize, history: bool) -> anyhow::Result<tokio::process::Child> {
        let concurrency = concurrency.to_string();
        let mut env = vec![("NIGHTSHIFT_CONCURRENCY", concurrency.as_str())];
        if !history {
            env.push(("NIGHTSHIFT_HISTORY_OFF", "1"));
        }
        self.spawn("worker", &env)
    }
}

/// Pushes `jobs` into the paused queue, resumes it and returns the rate it drained at.
pub(crate) async fn drain_rate(queue: &Queue, jobs: &[NewJob]) -> anyhow::Result<f64> {
    let before = push_paused(queue, jobs).await?;
    resume_until_done(queue, before, jobs.len()).await
}

/// Pushes `jobs` into the paused queue: the succeeded count to drain from.
pub(crate) async fn push_paused(queue: &Queue, jobs: &[NewJob]) -> anyhow::Result<u64> {
    queue.pause().await?;
    queue.push_bulk(jobs).await?;
    Ok(queue.counts().await?.succeeded_total)
}

/// Resumes the queue and waits until `n` more jobs than `before` succeeded: the rate.
pub(crate) async fn resume_until_done(queue: &Queue, before: u64, n: usize) -> anyhow::Result<f64> {
    queue.resume().await?;
    let (took, _) = wait_processed(queue, before, n as u64, Duration::MAX).await?;
    Ok(n as f64 / took.as_secs_f64())
}

/// Waits until `target` jobs succeeded; also returns the rate in each `window`.
async fn wait_processed(
    queue: &Queue,
    base: u64,
    target: u64,
    window: Duration,
) -> anyhow::Result<(Duration, Vec<f64>)> {
    let start = Instant::now();
    let mut mark = (start, base);
    let mut windows = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        let done = queue.counts().await?.succeeded_total;
        let now = Instant::now();
        if now - mark.0 >= window {
            windows.push((done - mark.1) as f64 / (now - mark.0).as_secs_f64());
            mark = (now, done);
        }
        if done - base >= target {
            return Ok((start.elapsed(), windows));
        }
        if start.elapsed() > Duration::from_secs(900) {
            bail!("processing stalled at {}/{target}", done - base);
        }
    }
}

pub(crate) async fn stop_child(mut child: tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
}

async fn process(
    ctx: &Ctx,
    queue: &Queue,
    n: usize,
    concurrency: usize,
    history: bool,
    label: &str,
) -> anyhow::Result<()> {
    let mut conn = queue.connection();
    let before = used_memory(&mut conn).await?;
    let jobs: Vec<NewJob> = (0..n).map(|_| noop()).collect();
    queue.push_bulk(&jobs).await?;
    drop(jobs);
    let queued_mem = used_memory(&mut conn).await? - before;
    let base = queue.counts().await?.succeeded_total;
    let db = db::connect(&ctx.bench_db_url, 1).await?;
    let recorded_before: i64 = sqlx::query_scalar("SELECT count(*) FROM job_history")
        .fetch_one(&db)
        .await?;
    let redis_pid: u32 = server_pid(&mut conn).await?;
    let redis_cpu = cpu_secs(redis_pid);
    let child = ctx.spawn_worker(concurrency, history)?;
    let pid = child.id().unwrap_or(0);
    let every = if n >= 200_000 {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(100)
    };
    let (mut elapsed, windows) = wait_processed(queue, base, n as u64, every).await?;
    if history {
        // Done means on record too: the writer may trail the acks by its channel's length.
        let t = Instant::now();
        while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM job_history")
            .fetch_one(&db)
            .await?
            < recorded_before + n as i64
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        elapsed += t.elapsed();
    }
    let (rss, hwm) = rss_kib(pid);
    let finished_mem = used_memory(&mut conn).await? - before;
    // Where the CPU went, per job: the worker process, its PostgreSQL backends (the history),
    // and Redis. On two cores, whatever PostgreSQL takes the worker and Redis do not get.
    let pg_pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&db)
    .await?;
    let per_job = |secs: f64| secs * 1e6 / n as f64;
    let cpu = format!(
        "CPU per job: worker {:.1} µs, postgres {:.1} µs, redis {:.1} µs",
        per_job(cpu_secs(pid)),
        per_job(pg_pids.iter().map(|p| cpu_secs(*p as u32)).sum()),
        per_job(cpu_secs(redis_pid) - redis_cpu),
    );
    stop_child(child).await;
    let rate = n as f64 / elapsed.as_secs_f64();
    println!(
        "process {label:>11} backlog, history {:<3}: {rate:>9.0} jobs/s  ({n} jobs in {:.2}s; worker RSS {:.1} MiB, peak {:.1} MiB)",
        if history { "on" } else { "off" },
        elapsed.as_secs_f64(),
        mib(rss),
        mib(hwm),
    );
    println!("    {cpu}");
    if windows.len() > 2 {
        let inner = &windows[..];
        let min = inner.iter().cloned().fold(f64::MAX, f64::min);
        let max = inner.iter().cloned().fold(0.0, f64::max);
        println!(
            "    rate per {:?} window: first {:.0}, min {min:.0}, max {max:.0}, last {:.0} jobs/s",
            every,
            inner[0],
            inner[inner.len() - 1]
        );
    }
    println!(
        "    redis memory: {:.0} B per queued job, {:.0} B per finished job (until its TTL)",
        queued_mem as f64 / n as f64,
        finished_mem as f64 / n as f64
    );
    Ok(())
}

pub(crate) async fn cleanup(conn: &mut nightshift_queue::RedisConn, prefix: &str) -> anyhow::Result<()> {
    // Only our own prefix: SCAN + UNLINK in batches, never FLUSHALL.
    let pattern = format!("{prefix}:*");
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(10_000)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            let _: () = conn.unlink(keys).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

pub async fn run(config: &Config, args: BenchArgs) -> anyhow::Result<()> {
    let ctx = Ctx::create(config).await?;
    let prefix = ctx.prefix.clone();
    let mut conn = connect_redis(&config.redis_url).await?;
    let queue = ctx.queue(&conn);
    println!(
        "nightshift bench: redis {}, {} cores, key prefix {prefix}",
        config.redis_url,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let result = async {
        let t = Instant::now();
        for _ in 0..args.single {
            queue.push(noop()).await?;
        }
        println!(
            "push one by one : {:>9.0} jobs/s  ({} jobs)",
            args.single as f64 / t.elapsed().as_secs_f64(),
            args.single
        );
        let jobs: Vec<NewJob> = (0..args.bulk).map(|_| noop()).collect();
        let t = Instant::now();
        queue.push_bulk(&jobs).await?;
        println!(
            "push bulk       : {:>9.0} jobs/s  ({} jobs, 1000 per call)",
            args.bulk as f64 / t.elapsed().as_secs_f64(),
            args.bulk
        );
        drop(jobs);
        cleanup(&mut conn, &prefix).await?;

        latency::latency(&ctx, &queue, &args).await?;
        cleanup(&mut conn, &prefix).await?;
        for history in [true, false] {
            process(&ctx, &queue, args.small_backlog, args.concurrency, history, "10k").await?;
        }
        cleanup(&mut conn, &prefix).await?;
        for history in [true, false] {
            process(&ctx, &queue, args.large_backlog, args.concurrency, history, "1M").await?;
            cleanup(&mut conn, &prefix).await?;
        }
        anyhow::Ok(())
    }
    .await;
    ctx.remove().await?;
    result
}

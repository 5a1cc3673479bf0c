//! `nightshift chaos`: the delivery promise under faults. One API and N worker processes run a
//! steady mixed load enqueued over HTTP while the runner SIGKILLs, SIGTERMs and SIGSTOPs workers
//! (starting replacements while the old ones still hold jobs) and SIGKILLs Redis. Then every
//! accepted job is compared with its final state and the effect ledger: lost jobs and duplicate
//! effects must be zero; duplicate executions are allowed and counted.
//!
//! It talks only to servers it starts: its own `redis-server` (AOF `everysec`, `noeviction`, a
//! data directory under a temp dir) and a private database on the configured PostgreSQL, both
//! removed at the end.
mod enqueue;
mod redis_server;
mod report;

use std::{
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use nightshift_common::{
    Config,
    auth::{Scope, TokenKeys},
    db,
};
use nightshift_queue::{JobState, Queue};
use secrecy::SecretString;
use tokio::process::Child;

use crate::bench::Ctx;
use enqueue::Enqueuer;
use redis_server::PrivateRedis;
use report::{Faults, Recovery};

#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    /// Worker processes kept alive.
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// Jobs running at once in each worker process.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// SIGKILLs of a random worker.
    #[arg(long, default_value_t = 100)]
    pub kill_cycles: usize,
    /// SIGTERMs of a random worker (a replacement starts while it drains).
    #[arg(long, default_value_t = 50)]
    pub term_cycles: usize,
    /// Workers stopped with SIGSTOP past their lease, then continued.
    #[arg(long, default_value_t = 2)]
    pub stop_cycles: usize,
    /// Redis SIGKILLed and restarted on the same port and append-only file.
    #[arg(long, default_value_t = 3)]
    pub redis_restarts: usize,
    /// Pause between two faults, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub interval_ms: u64,
    /// How long Redis stays down at each restart, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub redis_down_ms: u64,
    /// Enqueue attempts per second over HTTP.
    #[arg(long, default_value_t = 40)]
    pub rate: u64,
    /// Jobs that abort their worker process on every attempt (must end dead).
    #[arg(long, default_value_t = 2)]
    pub abort_jobs: usize,
    /// The workers' lease: a killed worker's jobs run again about this long after the kill
    /// (production uses 30 s).
    #[arg(long, default_value_t = 5.0)]
    pub lease_secs: f64,
    /// Most seconds to wait for the queue to drain after the last fault.
    #[arg(long, default_value_t = 180)]
    pub drain_secs: u64,
}

/// One fault of the plan.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Kill,
    Term,
    Stop,
    Redis,
}

/// The faults in a fixed order, each kind spread evenly over the run.
fn plan(args: &ChaosArgs) -> Vec<Fault> {
    let mut at: Vec<(f64, Fault)> = Vec::new();
    for (count, fault) in [
        (args.kill_cycles, Fault::Kill),
        (args.term_cycles, Fault::Term),
        (args.stop_cycles, Fault::Stop),
        (args.redis_restarts, Fault::Redis),
    ] {
        at.extend((0..count).map(|i| ((i as f64 + 0.5) / count as f64, fault)));
    }
    at.sort_by(|a, b| a.0.total_cmp(&b.0));
    at.into_iter().map(|(_, f)| f).collect()
}

pub async fn run(config: &Config, args: ChaosArgs) -> anyhow::Result<()> {
    if args.workers == 0 || args.concurrency == 0 || args.rate == 0 {
        bail!("--workers, --concurrency and --rate must be at least 1");
    }
    if !(0.3..=300.0).contains(&args.lease_secs) {
        bail!("--lease-secs must be between 0.3 and 300");
    }
    let dir = std::env::temp_dir().join(format!("nightshift-chaos-{}", uuid::Uuid::new_v4().simple()));
    let mut redis = PrivateRedis::start(&dir.join("redis")).await?;
    let mut config = config.clone();
    config.redis_url = redis.url();
    let ctx = Ctx::create(&config).await?;
    let outcome = chaos(&ctx, &mut redis, &dir, &args).await;
    redis.kill().await;
    db::drop_database(&ctx.bench_db_url)
        .await
        .context("dropping the chaos database")?;
    let failed = match &outcome {
        Ok(report) => report.failed(),
        Err(_) => Some(String::new()),
    };
    // A failed run keeps the process logs and Redis's append-only file for the post-mortem.
    if failed.is_some() {
        eprintln!("chaos: process logs and Redis data kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome?;
    if let Some(why) = failed {
        bail!("chaos run failed: {why}");
    }
    Ok(())
}

/// The API and workers, as child processes on the private Redis and database.
struct Fleet<'a> {
    ctx: &'a Ctx,
    env: Vec<(String, String)>,
    log: PathBuf,
    target: usize,
    workers: Vec<Child>,
    /// SIGTERMed workers finishing their jobs; replacements already run.
    draining: Vec<Child>,
    faults: Faults,
}

impl Fleet<'_> {
    fn spawn(&self, role: &str, extra: &[(&str, &str)]) -> anyhow::Result<Child> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        // Finished jobs stay in Redis for the whole run: the final check reads them there.
        let mut env: Vec<(&str, &str)> = vec![("NIGHTSHIFT_FINISHED_TTL_SECS", "86400")];
        env.extend(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        env.extend(extra.iter().copied());
        let mut cmd = self.ctx.command(role, &env)?;
        cmd.stderr(Stdio::from(log));
        cmd.spawn().with_context(|| format!("starting nightshift {role}"))
    }

    /// Notes workers that died on their own (a job aborted them) and brings the fleet back to
    /// its size; a worker refuses to start without Redis, so none is started while it is down.
    fn supervise(&mut self, redis_up: bool) -> anyhow::Result<()> {
        let mut i = 0;
        while i < self.workers.len() {
            match self.workers[i].try_wait()? {
                None => i += 1,
                Some(status) => {
                    if status.signal() == Some(6) {
                        self.faults.aborted += 1;
                    } else {
                        self.faults.other_exits += 1;
                    }
                    self.workers.swap_remove(i);
                }
            }
        }
        let mut i = 0;
        while i < self.draining.len() {
            match self.draining[i].try_wait()? {
                None => i += 1,
                Some(status) => {
                    if !status.success() {
                        self.faults.unclean_terms += 1;
                    }
                    self.draining.swap_remove(i);
                }
            }
        }
        while redis_up && self.workers.len() < self.target {
            let w = self.spawn("worker", &[])?;
            self.workers.push(w);
        }
        Ok(())
    }

    fn random_worker(&mut self) -> Option<Child> {
        if self.workers.is_empty() {
            return None;
        }
        let i = rand::random_range(0..self.workers.len());
        Some(self.workers.swap_remove(i))
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// The jobs a worker process holds, by the worker identity each lease names.
async fn held_by(queue: &Queue, pid: u32) -> Vec<(String, String)> {
    let tag = format!(":{pid}:");
    let running = queue.list(JobState::Running, 0, 100_000).await.unwrap_or_default();
    running
        .into_iter()
        .filter_map(|r| Some((r.id, r.worker.filter(|w| w.contains(&tag))?)))
        .collect()
}

struct Run<'a> {
    fleet: Fleet<'a>,
    queue: Queue,
    stats_key: String,
    recovery: Recovery,
    api: String,
    http: reqwest::Client,
}

impl Run<'_> {
    /// Waits `d` while keeping the fleet at size and noting recovered jobs.
    async fn pace(&mut self, d: Duration, redis_up: bool) -> anyhow::Result<()> {
        let until = Instant::now() + d;
        loop {
            self.fleet.supervise(redis_up)?;
            if redis_up {
                self.recovery.check(&self.queue).await;
            }
            if Instant::now() >= until {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100).min(until - Instant::now())).await;
        }
    }

    async fn kill(&mut self, sig: &str) -> anyhow::Result<()> {
        let Some(mut victim) = self.fleet.random_worker() else {
            return Ok(());
        };
        let pid = victim.id().unwrap_or(0);
        let held = held_by(&self.queue, pid).await;
        signal(pid, sig);
        if sig == "KILL" {
            let _ = victim.wait().await;
            self.recovery.watch(Instant::now(), held);
            self.fleet.faults.killed += 1;
        } else {
            self.fleet.draining.push(victim);
            self.fleet.faults.termed += 1;
        }
        self.fleet.supervise(true)
    }

    /// SIGSTOP the worker holding the most jobs, start another, wait until its jobs were taken
    /// back (its lease expired), then SIGCONT: its late outcomes must be refused.
    async fn stall(&mut self, lease: Duration) -> anyhow::Result<()> {
        let mut best: Option<(usize, Vec<(String, String)>)> = None;
        for (i, w) in self.fleet.workers.iter().enumerate() {
            let held = held_by(&self.queue, w.id().unwrap_or(0)).await;
            if best.as_ref().is_none_or(|b| held.len() > b.1.len()) {
                best = Some((i, held));
            }
        }
        let Some((i, held)) = best else { return Ok(()) };
        let pid = self.fleet.workers[i].id().unwrap_or(0);
        signal(pid, "STOP");
        let replacement = self.fleet.spawn("worker", &[])?;
        self.fleet.workers.push(replacement);
        let ids: Vec<String> = held.iter().map(|(id, _)| id.clone()).collect();
        let stalled_at = Instant::now();
        let deadline = stalled_at + lease * 3 + Duration::from_secs(5);
        loop {
            self.pace(Duration::from_millis(200), true).await?;
            let mut taken = 0;
            for (id, owner) in &held {
                if let Ok(Some(rec)) = self.queue.inspect(id).await
                    && rec.worker.as_deref() != Some(owner.as_str())
                {
                    taken += 1;
                }
            }
            if (taken == ids.len() && stalled_at.elapsed() > lease) || Instant::now() > deadline {
                self.fleet.faults.stalled_jobs_taken_back += taken;
                self.fleet.faults.stalled_jobs += ids.len();
                break;
            }
        }
        signal(pid, "CONT");
        self.fleet.faults.stopped += 1;
        Ok(())
    }

    async fn restart_redis(
        &mut self,
        redis: &mut PrivateRedis,
        down: Duration,
        log: &mut report::Outages,
    ) -> anyhow::Result<()> {
        // An fsync the disk is slow to finish makes Redis postpone writing the append-only file
        // while still answering clients: a kill then loses acknowledged writes. Noted per kill.
        let info: Result<String, _> = redis::cmd("INFO")
            .arg("persistence")
            .query_async(&mut self.queue.connection())
            .await;
        let delayed = info.ok().and_then(|i| {
            i.lines()
                .find_map(|l| l.strip_prefix("aof_delayed_fsync:"))
                .and_then(|v| v.trim().parse().ok())
        });
        log.delayed_fsync.push(delayed);
        redis.kill().await;
        let down_at = Instant::now();
        self.pace(down / 2, false).await?;
        let ready = self
            .http
            .get(format!("{}/health/ready", self.api))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .ok();
        self.pace(down.saturating_sub(down_at.elapsed()), false).await?;
        let restart_at = Instant::now();
        redis.restart().await?;
        let back = Instant::now();
        let stat = |q: Queue, key: String| async move {
            let mut conn = q.connection();
            redis::cmd("HGET")
                .arg(key)
                .arg("succeeded")
                .query_async::<Option<u64>>(&mut conn)
                .await
        };
        let mut base = None;
        let mut first_job = None;
        while back.elapsed() < Duration::from_secs(60) {
            match (stat(self.queue.clone(), self.stats_key.clone()).await, base) {
                (Ok(n), None) => base = Some(n.unwrap_or(0)),
                (Ok(n), Some(b)) if n.unwrap_or(0) > b => {
                    first_job = Some(back.elapsed());
                    break;
                }
                _ => {}
            }
            self.fleet.supervise(true)?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        log.windows.push((down_at, restart_at));
        log.ready_while_down.push(ready);
        log.first_job_after.push(first_job);
        self.fleet.faults.redis_restarts += 1;
        Ok(())
    }
}

async fn chaos(ctx: &Ctx, redis: &mut PrivateRedis, dir: &Path, args: &ChaosArgs) -> anyhow::Result<report::Report> {
    let secret: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    let lease = Duration::from_secs_f64(args.lease_secs);
    let reap = (args.lease_secs / 5.0).clamp(0.1, 5.0);
    let api_addr = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()
    );
    let env: Vec<(String, String)> = [
        ("NIGHTSHIFT_JWT_SECRET", secret.clone()),
        ("NIGHTSHIFT_API_ADDR", api_addr.clone()),
        ("NIGHTSHIFT_API_RATE_PER_MINUTE", "100000000".into()),
        ("NIGHTSHIFT_API_RATE_BURST", "1000000".into()),
        ("NIGHTSHIFT_API_IP_RATE_PER_MINUTE", "100000000".into()),
        ("NIGHTSHIFT_API_IP_RATE_BURST", "1000000".into()),
        ("NIGHTSHIFT_CONCURRENCY", args.concurrency.to_string()),
        ("NIGHTSHIFT_LEASE_SECS", args.lease_secs.to_string()),
        ("NIGHTSHIFT_REAP_INTERVAL_SECS", reap.to_string()),
        ("NIGHTSHIFT_HEARTBEAT_SECS", reap.to_string()),
        // Finished jobs stay in Redis until the comparison at the end has read them.
        ("NIGHTSHIFT_FINISHED_TTL_SECS", "86400".into()),
        ("NIGHTSHIFT_SHUTDOWN_TIMEOUT_SECS", "30".into()),
        ("NIGHTSHIFT_DIAG_ABORT", "1".into()),
        // The load is made of diagnostic kinds.
        ("NIGHTSHIFT_DIAGNOSTICS", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let log = dir.join("processes.log");
    let mut fleet = Fleet {
        ctx,
        env,
        log: log.clone(),
        target: args.workers,
        workers: Vec::new(),
        draining: Vec::new(),
        faults: Faults::default(),
    };
    let mut api = fleet.spawn("api", &[])?;
    let api_url = format!("http://{api_addr}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http
        .get(format!("{api_url}/health/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if Instant::now() > deadline || api.try_wait()?.is_some() {
            bail!("the API did not become ready; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fleet.supervise(true)?;
    let keys = TokenKeys::from_secret(&SecretString::from(secret));
    let token = keys.issue(
        "chaos",
        // diag.abort is an operator kind.
        &[Scope::JobsWrite, Scope::JobsRead, Scope::Admin],
        Duration::from_secs(24 * 3600),
    )?;
    let mut qc = ctx.config.queue.clone();
    qc.prefix = ctx.prefix.clone();
    let queue = Queue::connect(&ctx.config.redis_url, "default", qc).await?;
    let stats_key = format!("{}:{{default}}:stats", ctx.prefix);
    let faults_plan = plan(args);
    println!(
        "nightshift chaos: {} workers x {} concurrency, lease {:.1}s, {} enqueues/s over HTTP; faults: {} SIGKILL, {} SIGTERM, {} SIGSTOP, {} Redis restarts, {} aborting jobs, every {} ms",
        args.workers,
        args.concurrency,
        args.lease_secs,
        args.rate,
        args.kill_cycles,
        args.term_cycles,
        args.stop_cycles,
        args.redis_restarts,
        args.abort_jobs,
        args.interval_ms
    );
    let started = Instant::now();
    let enqueuer = Enqueuer::start(http.clone(), api_url.clone(), token, args.rate, args.abort_jobs);
    let mut run = Run {
        fleet,
        queue,
        stats_key: stats_key.clone(),
        recovery: Recovery::default(),
        api: api_url,
        http,
    };
    let mut outages = report::Outages::default();
    let pace = Duration::from_millis(args.interval_ms);
    let result = async {
        for fault in faults_plan {
            run.pace(pace, true).await?;
            match fault {
                Fault::Kill => run.kill("KILL").await?,
                Fault::Term => run.kill("TERM").await?,
                Fault::Stop => run.stall(lease).await?,
                Fault::Redis => {
                    run.restart_redis(redis, Duration::from_millis(args.redis_down_ms), &mut outages)
                        .await?
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    let sent = enqueuer.stop().await;
    result?;
    let faults_secs = started.elapsed().as_secs_f64();
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain_secs);
    loop {
        run.pace(Duration::from_millis(250), true).await?;
        let c = run.queue.counts().await;
        if c.is_ok_and(|c| c.queued + c.scheduled + c.running + c.retrying == 0) || Instant::now() > drain_deadline {
            break;
        }
    }
    let drain_secs = started.elapsed().as_secs_f64() - faults_secs;
    if api.try_wait()?.is_some() {
        run.fleet.faults.api_died = true;
    }
    let pool = db::connect(&ctx.bench_db_url, 2).await?;
    let mut conn = run.queue.connection();
    let stale: Option<u64> = redis::cmd("HGET")
        .arg(&stats_key)
        .arg("stale")
        .query_async(&mut conn)
        .await?;
    let report = report::Report::compile(
        &run.queue,
        &pool,
        sent,
        outages,
        std::mem::take(&mut run.fleet.faults),
        std::mem::take(&mut run.recovery),
        stale.unwrap_or(0),
    )
    .await?;
    report.print(faults_secs, drain_secs);
    for child in run.fleet.workers.drain(..).chain(run.fleet.draining.drain(..)) {
        crate::bench::stop_child(child).await;
    }
    crate::bench::stop_child(api).await;
    Ok(report)
}

//! `nightshift chaos`: the delivery promise under faults. One API and N worker processes run a
//! steady mixed load enqueued over HTTP while the runner SIGKILLs, SIGTERMs and SIGSTOPs workers
//! (starting replacements while the old ones still hold jobs), SIGKILLs Redis and stops it
//! (SIGSTOP) past two leases, fails it over to its replica behind a proxy, and makes the link to
//! it slow and lossy for a while, beside a worker whose clock runs fast, one whose clock runs
//! slow and an API whose clock runs slow (libfaketime, `--skew-secs`). Then every
//! accepted job is compared with its final state and the effect ledger: lost jobs and duplicate
//! effects must be zero; duplicate executions are allowed and counted.
//!
//! It talks only to servers it starts: its own `redis-server` and its replica (AOF `everysec`,
//! `noeviction`, data directories under a temp dir), reached through a proxy of its own, and a
//! private database on the configured PostgreSQL, all removed at the end.
mod enqueue;
mod faults;
mod fleet;
mod redis_server;
mod report;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use nightshift_common::{
    Config,
    auth::{Scope, TokenKeys},
    db,
};
use nightshift_queue::Queue;
use secrecy::SecretString;

use crate::bench::Ctx;
use enqueue::Enqueuer;
use faults::FaultRun;
use fleet::Fleet;
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
    /// Redis SIGSTOPped for two leases, then continued.
    #[arg(long, default_value_t = 2)]
    pub redis_stalls: usize,
    /// Failovers to the replica (promoted; the old primary demoted, then killed).
    #[arg(long, default_value_t = 2)]
    pub failovers: usize,
    /// Stretches of three leases with the link to Redis half a lease slower and cutting 2 % of
    /// the connections.
    #[arg(long, default_value_t = 2)]
    pub slow_links: usize,
    /// Beside the fleet, one worker this many seconds fast and one as many slow, and the API as
    /// many slow (libfaketime); 0 runs every clock true.
    #[arg(long, default_value_t = 90)]
    pub skew_secs: u64,
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
    RedisStall,
    Failover,
    SlowLink,
}

/// The faults in a fixed order, each kind spread evenly over the run.
fn plan(args: &ChaosArgs) -> Vec<Fault> {
    let mut at: Vec<(f64, Fault)> = Vec::new();
    for (count, fault) in [
        (args.kill_cycles, Fault::Kill),
        (args.term_cycles, Fault::Term),
        (args.stop_cycles, Fault::Stop),
        (args.redis_restarts, Fault::Redis),
        (args.redis_stalls, Fault::RedisStall),
        (args.failovers, Fault::Failover),
        (args.slow_links, Fault::SlowLink),
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
    let mut redis = PrivateRedis::start(&dir.join("redis"), None).await?;
    let mut replica = PrivateRedis::start(&dir.join("replica"), Some(redis.port)).await?;
    let proxy = crate::proxy::LatencyProxy::start(redis.port, Duration::ZERO).await;
    let mut config = config.clone();
    config.redis_url = proxy.url();
    let ctx = Ctx::create(&config).await?;
    let mut servers = Servers {
        primary: &mut redis,
        replica: &mut replica,
        proxy: &proxy,
    };
    let outcome = chaos(&ctx, &mut servers, &dir, &args).await;
    redis.kill().await;
    replica.kill().await;
    let failed = match &outcome {
        Ok(report) => report.failed(),
        Err(_) => Some(String::new()),
    };
    // A failed run keeps the process logs, Redis's append-only file and the database (the job
    // history says what happened to a lost job) for the post-mortem.
    if failed.is_some() {
        eprintln!(
            "chaos: process logs and Redis data kept in {}, the database at {}",
            dir.display(),
            ctx.bench_db_url
        );
    } else {
        db::drop_database(&ctx.bench_db_url)
            .await
            .context("dropping the chaos database")?;
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome?;
    if let Some(why) = failed {
        bail!("chaos run failed: {why}");
    }
    Ok(())
}

/// Redis as the fleet reaches it: a primary and its replica (they swap at a failover) behind a
/// proxy.
struct Servers<'a> {
    primary: &'a mut PrivateRedis,
    replica: &'a mut PrivateRedis,
    proxy: &'a crate::proxy::LatencyProxy,
}

async fn chaos(ctx: &Ctx, redis: &mut Servers<'_>, dir: &Path, args: &ChaosArgs) -> anyhow::Result<report::Report> {
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
        skewed: Vec::new(),
        faults: Faults::default(),
    };
    let mut api_env = Vec::new();
    if args.skew_secs > 0 {
        let (fast, slow) = (format!("+{}", args.skew_secs), format!("-{}", args.skew_secs));
        api_env = fleet::skewed_env(&slow)?;
        fleet.faults.skewed = vec![
            format!("worker {fast}s"),
            format!("worker {slow}s"),
            format!("API {slow}s"),
        ];
        fleet.skewed = vec![(fast, None), (slow, None)];
    }
    let api_env: Vec<(&str, &str)> = api_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut api = fleet.spawn("api", &api_env)?;
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
        "nightshift chaos: {} workers x {} concurrency, lease {:.1}s, {} enqueues/s over HTTP; faults: {} SIGKILL, {} SIGTERM, {} SIGSTOP, {} Redis restarts, {} Redis stalls, {} failovers, {} slow links, {} aborting jobs, clocks ±{} s, every {} ms",
        args.workers,
        args.concurrency,
        args.lease_secs,
        args.rate,
        args.kill_cycles,
        args.term_cycles,
        args.stop_cycles,
        args.redis_restarts,
        args.redis_stalls,
        args.failovers,
        args.slow_links,
        args.abort_jobs,
        args.skew_secs,
        args.interval_ms
    );
    let started = Instant::now();
    let enqueuer = Enqueuer::start(http.clone(), api_url.clone(), token, args.rate, args.abort_jobs);
    let mut run = FaultRun {
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
                    run.restart_redis(redis.primary, Duration::from_millis(args.redis_down_ms), &mut outages)
                        .await?
                }
                Fault::RedisStall => run.stall_redis(redis.primary, lease * 2).await?,
                Fault::Failover => run.failover(redis.primary, redis.replica, redis.proxy).await?,
                Fault::SlowLink => run.slow_link(redis.proxy, lease).await?,
            }
        }
        anyhow::Ok(())
    }
    .await;
    let sent = enqueuer.stop().await;
    result?;
    let faults_secs = started.elapsed().as_secs_f64();
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain_secs);
    // Jobs a failover lost are back once a worker has seen the new server (its recovery
    // watch ticks every 2 s, and checks again 10 s on): until then an empty queue is not done.
    let settled = Instant::now() + Duration::from_secs(12);
    loop {
        run.pace(Duration::from_millis(250), true).await?;
        let c = run.queue.counts().await;
        let empty = c.is_ok_and(|c| c.queued + c.scheduled + c.running + c.retrying == 0);
        if (empty && Instant::now() > settled) || Instant::now() > drain_deadline {
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
    let skewed = run.fleet.skewed.drain(..).filter_map(|(_, c)| c);
    for child in run
        .fleet
        .workers
        .drain(..)
        .chain(run.fleet.draining.drain(..))
        .chain(skewed)
    {
        crate::bench::stop_child(child).await;
    }
    crate::bench::stop_child(api).await;
    Ok(report)
}

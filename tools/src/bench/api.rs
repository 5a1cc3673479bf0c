//! `nightshift bench-api`: the front door, measured with wrk against a real `nightshift api`
//! child process in one run: the HTTP ceiling (`GET /health/live`), single `POST /v1/jobs`,
//! and `POST /v1/jobs/batch` at 1,000 jobs a request; the API's memory. No worker runs
//! meanwhile: the jobs stay queued under a private prefix and database, both removed at the
//! end. Then one worker process drains a backlog with the job history on and off.
//! `scripts/bench-api.sh` installs wrk and runs it.
use std::{path::Path, process::Stdio, time::Duration};

use anyhow::{Context as _, bail};
use nightshift_common::auth::{Scope, TokenKeys};
use secrecy::SecretString;

use super::{Ctx, cpu_secs, mib, rss_kib, stop_child};

#[derive(Debug, clap::Args)]
pub struct ApiBenchArgs {
    /// Connections for the health and single-enqueue runs.
    #[arg(long, default_value_t = 64)]
    pub connections: u32,
    /// Connections for the batch run (each request carries 1,000 jobs).
    #[arg(long, default_value_t = 8)]
    pub batch_connections: u32,
    /// Seconds of each run.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Requests a second of the steady single-enqueue run (its latency is the figure).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Jobs one worker process drains with the history on, then off (0 skips it).
    #[arg(long, default_value_t = 300_000)]
    pub worker_jobs: usize,
}

pub async fn run(config: &nightshift_common::Config, args: ApiBenchArgs) -> anyhow::Result<()> {
    let wrk = std::process::Command::new("wrk").arg("--version").output();
    if wrk.is_err() {
        bail!("wrk is not installed: scripts/bench-api.sh installs it (Debian's wrk package)");
    }
    let ctx = Ctx::create(config).await?;
    let result = bench(&ctx, &args).await;
    ctx.remove().await?;
    result
}

/// What a run measured: requests a second, p50 and p99, and how many answers were not 2xx.
pub(crate) struct Measured {
    pub(crate) rps: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) not_2xx: u64,
}

/// A `nightshift api` child on the bench prefix and database, ready, with keys for tokens.
pub(crate) struct ApiChild {
    pub(crate) child: tokio::process::Child,
    pub(crate) base: String,
    pub(crate) keys: TokenKeys,
}

/// Starts the API with rate limits out of the way, and waits until it is ready.
pub(crate) async fn start_api(ctx: &Ctx) -> anyhow::Result<ApiChild> {
    let secret: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    let addr = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()
    );
    let env = [
        ("NIGHTSHIFT_JWT_SECRET", secret.as_str()),
        ("NIGHTSHIFT_API_ADDR", addr.as_str()),
        ("NIGHTSHIFT_API_RATE_PER_MINUTE", "1000000000"),
        ("NIGHTSHIFT_API_RATE_BURST", "100000000"),
        ("NIGHTSHIFT_API_IP_RATE_PER_MINUTE", "1000000000"),
        ("NIGHTSHIFT_API_IP_RATE_BURST", "100000000"),
        // bench-api's load is `noop`, a diagnostic kind.
        ("NIGHTSHIFT_DIAGNOSTICS", "1"),
    ];
    let child = ctx.spawn("api", &env)?;
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if std::time::Instant::now() > deadline {
            bail!("the API did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(ApiChild {
        child,
        base,
        keys: TokenKeys::from_secret(&SecretString::from(secret)),
    })
}

async fn bench(ctx: &Ctx, args: &ApiBenchArgs) -> anyhow::Result<()> {
    let api = start_api(ctx).await?;
    let pid = api.child.id().unwrap_or(0);
    let result = measure(ctx, &api.base, pid, &api.keys, args).await;
    stop_child(api.child).await;
    result?;
    if args.worker_jobs > 0 {
        // What the enqueued jobs then cost to run: one worker process with the history on and
        // off, side by side in the same run.
        let mut conn = nightshift_queue::connect_redis(&ctx.config.redis_url).await?;
        let queue = ctx.queue(&conn);
        for history in [true, false] {
            super::cleanup(&mut conn, &ctx.prefix).await?;
            let label = format!("{}k", args.worker_jobs / 1000);
            super::process(ctx, &queue, args.worker_jobs, 512, history, &label).await?;
        }
    }
    Ok(())
}

/// CPU seconds used so far by the API process, its PostgreSQL backends, Redis, and the whole
/// machine: read around each run, they say what a request costs and where (wrk itself runs on
/// the same two cores).
struct Cpu {
    api: f64,
    postgres: f64,
    redis: f64,
    machine: f64,
}

struct Probe {
    db: sqlx::PgPool,
    api_pid: u32,
    redis_pid: u32,
}

impl Probe {
    async fn read(&self) -> anyhow::Result<Cpu> {
        let backends: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
               AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .fetch_all(&self.db)
        .await?;
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        // The first line: user nice system idle iowait irq softirq steal, in USER_HZ (100).
        let busy: u64 = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(8)
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 4)
            .filter_map(|(_, v)| v.parse::<u64>().ok())
            .sum();
        Ok(Cpu {
            api: cpu_secs(self.api_pid),
            postgres: backends.iter().map(|p| cpu_secs(*p as u32)).sum(),
            redis: cpu_secs(self.redis_pid),
            machine: busy as f64 / 100.0,
        })
    }
}

/// Where the CPU of `units` requests (or jobs) went between two readings.
fn split(before: &Cpu, after: &Cpu, units: f64, unit: &str) -> String {
    let us = |a: f64, b: f64| (b - a) * 1e6 / units;
    let (api, pg, redis, all) = (
        us(before.api, after.api),
        us(before.postgres, after.postgres),
        us(before.redis, after.redis),
        us(before.machine, after.machine),
    );
    format!(
        "CPU per {unit}: api {api:.1} µs, postgres {pg:.1} µs, redis {redis:.1} µs, wrk and the rest {:.1} µs",
        all - api - pg - redis
    )
}

async fn measure(ctx: &Ctx, base: &str, pid: u32, keys: &TokenKeys, args: &ApiBenchArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let token = keys.issue("bench-api", &[Scope::JobsWrite], Duration::from_secs(3600))?;
    let dir = std::env::temp_dir().join(format!("nightshift-bench-api-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let single = post_script(&dir, "single", &token, r#"{"kind":"noop"}"#)?;
    let jobs: Vec<&str> = (0..1000).map(|_| r#"{"kind":"noop"}"#).collect();
    let batch = post_script(&dir, "batch", &token, &format!(r#"{{"jobs":[{}]}}"#, jobs.join(",")))?;
    let c = args.connections;
    let mut redis = nightshift_queue::connect_redis(&ctx.config.redis_url).await?;
    let probe = Probe {
        db: nightshift_common::db::connect(&ctx.bench_db_url, 1).await?,
        api_pid: pid,
        redis_pid: super::server_pid(&mut redis).await?,
    };
    let steady = steady(&http, base, &token, args.rate, args.seconds).await?;
    let before = probe.read().await?;
    let health = wrk(&format!("{base}/health/live"), None, c, args.seconds)?;
    let after_health = probe.read().await?;
    let one = wrk(&format!("{base}/v1/jobs"), Some(&single), c, args.seconds)?;
    let after_one = probe.read().await?;
    let many = wrk(
        &format!("{base}/v1/jobs/batch"),
        Some(&batch),
        args.batch_connections,
        args.seconds,
    )?;
    let after_many = probe.read().await?;
    let requests = |r: &Measured| r.rps * args.seconds as f64;
    let _ = std::fs::remove_dir_all(&dir);
    let (rss, peak) = rss_kib(pid);
    let line = |what: &str, r: &Measured| {
        println!(
            "{what:<34}: {:>9.0} requests/s  p50 {:>7.2} ms  p99 {:>7.2} ms{}",
            r.rps,
            r.p50.as_secs_f64() * 1000.0,
            r.p99.as_secs_f64() * 1000.0,
            if r.not_2xx > 0 {
                format!("  ({} answers not 2xx)", r.not_2xx)
            } else {
                String::new()
            }
        )
    };
    line(&format!("GET /health/live, {c} conns"), &health);
    println!("    {}", split(&before, &after_health, requests(&health), "request"));
    line(&format!("POST /v1/jobs, {c} conns"), &one);
    println!("    {}", split(&after_health, &after_one, requests(&one), "request"));
    println!(
        "    single enqueue is {:.0}% of the health ceiling",
        100.0 * one.rps / health.rps
    );
    line(&format!("POST /v1/jobs, steady {}/s", args.rate), &steady);
    line(
        &format!("POST /v1/jobs/batch x1000, {} conns", args.batch_connections),
        &many,
    );
    println!("    batch enqueue: {:.0} jobs/s", many.rps * 1000.0);
    println!(
        "    {}",
        split(&after_one, &after_many, requests(&many) * 1000.0, "job")
    );
    println!("API RSS {:.1} MiB, peak {:.1} MiB", mib(rss), mib(peak));
    Ok(())
}

/// Single enqueues at a fixed rate (wrk cannot hold one).
async fn steady(http: &reqwest::Client, base: &str, token: &str, rate: u64, seconds: u64) -> anyhow::Result<Measured> {
    paced(rate, seconds, reqwest::StatusCode::ACCEPTED, |_| {
        http.post(format!("{base}/v1/jobs"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(r#"{"kind":"noop"}"#)
    })
    .await
}

/// The requests `request(i)` makes, one per tick at `rate` a second for `seconds`: each
/// starts on its tick whatever the ones before it are doing, so a slow answer shows in the
/// latency rather than lowering the rate. An answer other than `expect` counts as not 2xx.
pub(crate) async fn paced(
    rate: u64,
    seconds: u64,
    expect: reqwest::StatusCode,
    request: impl Fn(u64) -> reqwest::RequestBuilder,
) -> anyhow::Result<Measured> {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut running = tokio::task::JoinSet::new();
    let started = std::time::Instant::now();
    for i in 0..rate * seconds {
        tick.tick().await;
        let req = request(i);
        running.spawn(async move {
            let t = std::time::Instant::now();
            let ok = req.send().await.is_ok_and(|r| r.status() == expect);
            (t.elapsed(), ok)
        });
    }
    let mut latencies = Vec::with_capacity((rate * seconds) as usize);
    let mut not_2xx = 0;
    while let Some(done) = running.join_next().await {
        let (latency, ok) = done?;
        latencies.push(latency);
        not_2xx += u64::from(!ok);
    }
    if latencies.is_empty() {
        bail!("the steady run sent no request (--rate and --seconds must be at least 1)");
    }
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    Ok(Measured {
        rps: latencies.len() as f64 / started.elapsed().as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        not_2xx,
    })
}

/// A wrk script that POSTs `body` with the token.
fn post_script(dir: &Path, name: &str, token: &str, body: &str) -> anyhow::Result<String> {
    let path = dir.join(format!("{name}.lua"));
    let quoted = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    std::fs::write(
        &path,
        format!(
            "wrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = {}\n",
            quoted(body),
            quoted(&format!("Bearer {token}"))
        ),
    )?;
    Ok(path.to_string_lossy().into_owned())
}

fn wrk(url: &str, script: Option<&str>, connections: u32, seconds: u64) -> anyhow::Result<Measured> {
    let mut cmd = std::process::Command::new("wrk");
    cmd.args([
        "-t",
        "2",
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{seconds}s"),
        "--latency",
    ]);
    if let Some(s) = script {
        cmd.args(["-s", s]);
    }
    let out = cmd.arg(url).stderr(Stdio::inherit()).output().context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed on {url}:\n{text}");
    }
    parse(&text).with_context(|| format!("reading wrk's output for {url}:\n{text}"))
}

fn parse(text: &str) -> Option<Measured> {
    let after = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
    };
    Some(Measured {
        rps: after("Requests/sec:")?.parse().ok()?,
        p50: duration(&after("50%")?)?,
        p99: duration(&after("99%")?)?,
        not_2xx: after("Non-2xx or 3xx responses:").map_or(Some(0), |v| v.parse().ok())?,
    })
}

/// wrk's `635.91us`, `1.02ms`, `1.20s`.
fn duration(v: &str) -> Option<Duration> {
    let (number, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let text = "Running 10s test @ http://127.0.0.1:1/health/live\n  Latency Distribution\n     50%  635.91us\n     75%  712.35us\n     90%  786.29us\n     99%    1.02ms\n  979456 requests in 10.00s, 1.2MB read\n  Non-2xx or 3xx responses: 12\nRequests/sec:  97945.67\n";
        let r = parse(text).unwrap();
        assert_eq!(r.rps, 97945.67);
        assert_eq!(r.p50, Duration::from_nanos(635_910));
        assert_eq!(r.p99, Duration::from_micros(1020));
        assert_eq!(r.not_2xx, 12);
    }
}

// Over 400 lines: one run of the soak (its phases, sampling, summary, CSV and the hand-drawn SVG chart, 100 lines) and its unit tests.
//! `nightshift soak --minutes N`: the platform under a long load that goes over its capacity
//! and comes back. A real `nightshift api` and `nightshift worker` run on a private prefix and
//! database; jobs are `diag.sleep` of `--job-ms`, so the worker's capacity is about its
//! concurrency over the job's time, and is measured first (a paused backlog, drained). Then
//! jobs are enqueued over HTTP, one request each: 80 % of that capacity for the first 40 % of
//! the run, 2 x for the next twentieth, 80 % again to the end. Each sample (a minute by default)
//! records both processes' RSS, Redis's memory, enqueue-to-start p50/p99/p99.9 of the jobs
//! that started in it (from the history: both ends stamped on the one clock) and the backlog;
//! the figures go to `soak.csv` and a chart of them to `soak.svg` in `--out`. Never run by the
//! test suite.
use std::{
    fmt::Write as _,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use nightshift_common::{auth::Scope, db};
use nightshift_queue::{NewJob, connect_redis};

use super::{Ctx, api::start_api, mib, rss_kib, stop_child, used_memory};

#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// Minutes of the whole run.
    #[arg(long, default_value_t = 30)]
    pub minutes: u64,
    /// Seconds between samples: one row of figures and one point of the chart each.
    #[arg(long, default_value_t = 60)]
    pub sample_secs: u64,
    /// Jobs the worker runs at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Milliseconds each job sleeps: long enough that the slots, not the CPU the API and the
    /// databases share with the worker, bound the capacity, so the one measured before the load
    /// holds under it.
    #[arg(long, default_value_t = 50)]
    pub job_ms: u64,
    /// Where soak.csv and soak.svg are written.
    #[arg(long, default_value = "target/soak")]
    pub out: PathBuf,
}

/// The load over the run, as fractions of the run and of the measured capacity.
const PHASES: [(f64, f64); 3] = [(0.4, 0.8), (0.45, 2.0), (1.0, 0.8)];

/// The offered rate at a point of the run (0..1), as a multiple of the capacity.
fn load_at(progress: f64) -> f64 {
    PHASES
        .iter()
        .find(|(until, _)| progress < *until)
        .map_or(PHASES[PHASES.len() - 1].1, |p| p.1)
}

/// Jobs due by `elapsed` of a run lasting `total`, at `capacity` jobs/s: the load's integral.
fn due(elapsed: Duration, total: Duration, capacity: f64) -> u64 {
    let (t, total) = (elapsed.as_secs_f64(), total.as_secs_f64());
    let mut from = 0.0;
    let mut jobs = 0.0;
    for (until, load) in PHASES {
        let end = (until * total).min(t);
        if end > from {
            jobs += (end - from) * load * capacity;
        }
        from = until * total;
    }
    jobs as u64
}

/// One sample of the run.
#[derive(Debug, Clone, Default)]
struct Sample {
    minute: f64,
    offered_per_sec: f64,
    accepted_per_sec: f64,
    worker_rss_mib: f64,
    api_rss_mib: f64,
    redis_mib: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    started: i64,
    backlog: u64,
}

pub async fn run(config: &nightshift_common::Config, args: SoakArgs) -> anyhow::Result<()> {
    let ctx = Ctx::create(config).await?;
    let result = soak(&ctx, &args).await;
    ctx.remove().await?;
    result
}

async fn soak(ctx: &Ctx, args: &SoakArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let api = start_api(ctx).await?;
    let concurrency = args.concurrency.to_string();
    let worker = ctx.spawn(
        "worker",
        &[
            ("NIGHTSHIFT_CONCURRENCY", concurrency.as_str()),
            ("NIGHTSHIFT_DIAGNOSTICS", "1"),
        ],
    )?;
    let (api_pid, worker_pid) = (api.child.id().unwrap_or(0), worker.id().unwrap_or(0));
    let mut conn = connect_redis(&ctx.config.redis_url).await?;
    let queue = ctx.queue(&conn);
    let payload = format!(r#"{{"ms":{},"quiet":true}}"#, args.job_ms);

    // Capacity: ten seconds' worth of the nominal rate, pushed paused, then drained.
    let nominal = args.concurrency as f64 * 1000.0 / args.job_ms.max(1) as f64;
    let backlog: Vec<NewJob> = (0..(nominal * 10.0) as usize)
        .map(|_| NewJob::new("diag.sleep", &payload))
        .collect();
    let capacity = super::drain_rate(&queue, &backlog).await?;
    println!(
        "nightshift soak: {} min, capacity {capacity:.0} jobs/s ({} slots x {} ms jobs; nominal {nominal:.0}), \
         load 80 %, 2x from 40 % to 45 % of the run, then 80 %",
        args.minutes, args.concurrency, args.job_ms
    );

    let token = api
        .keys
        .issue("soak", &[Scope::JobsWrite], Duration::from_secs(24 * 3600))?;
    let total = Duration::from_secs(args.minutes * 60);
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let load = tokio::spawn(offer(
        api.base.clone(),
        token,
        payload.clone(),
        total,
        capacity,
        accepted.clone(),
        refused.clone(),
    ));

    let history = db::connect(&ctx.bench_db_url, 2).await?;
    // Only the load's jobs count: the calibration's backlog waited on purpose.
    let load_start: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&history)
        .await?;
    let mut accepted_before = 0;
    let every = Duration::from_secs(args.sample_secs.max(5));
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    while start.elapsed() < total {
        tick.tick().await;
        let elapsed = start.elapsed();
        // The jobs that started in the last sample, minus a few seconds for the history writer.
        let lag = Duration::from_secs(5);
        let (p50, p99, p999, started): (Option<f64>, Option<f64>, Option<f64>, i64) = sqlx::query_as(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms),
                    percentile_cont(0.999) WITHIN GROUP (ORDER BY ms), count(*)
               FROM (SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms FROM job_history
                      WHERE started_at >= clock_timestamp() - $1::float8 * interval '1 second'
                        AND started_at < clock_timestamp() - $2::float8 * interval '1 second'
                        AND created_at >= $3) s",
        )
        .bind((every + lag).as_secs_f64())
        .bind(lag.as_secs_f64())
        .bind(load_start)
        .fetch_one(&history)
        .await?;
        let counts = queue.counts().await?;
        let accepted_now = accepted.load(Ordering::Relaxed);
        let sample = Sample {
            accepted_per_sec: (accepted_now - accepted_before) as f64 / every.as_secs_f64(),
            minute: elapsed.as_secs_f64() / 60.0,
            offered_per_sec: load_at(elapsed.as_secs_f64() / total.as_secs_f64()) * capacity,
            worker_rss_mib: mib(rss_kib(worker_pid).0),
            api_rss_mib: mib(rss_kib(api_pid).0),
            redis_mib: used_memory(&mut conn).await? as f64 / (1024.0 * 1024.0),
            p50_ms: p50.unwrap_or(0.0),
            p99_ms: p99.unwrap_or(0.0),
            p999_ms: p999.unwrap_or(0.0),
            started,
            backlog: counts.queued,
        };
        println!(
            "{:>5.1} min  offered {:>5.0}/s  accepted {:>5.0}/s  started {:>6}  p50 {:>8.1} ms  p99 {:>8.1} ms  p99.9 {:>8.1} ms  \
             backlog {:>7}  worker {:>5.1} MiB  api {:>5.1} MiB  redis {:>6.1} MiB",
            sample.minute,
            sample.offered_per_sec,
            sample.accepted_per_sec,
            sample.started,
            sample.p50_ms,
            sample.p99_ms,
            sample.p999_ms,
            sample.backlog,
            sample.worker_rss_mib,
            sample.api_rss_mib,
            sample.redis_mib
        );
        samples.push(sample);
        accepted_before = accepted_now;
    }
    load.abort();
    stop_child(worker).await;
    stop_child(api.child).await;
    println!(
        "requests accepted {}, refused {}",
        accepted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
    println!("{}", summary(&samples));
    std::fs::write(args.out.join("soak.csv"), csv(&samples))?;
    std::fs::write(args.out.join("soak.svg"), svg(&samples))?;
    println!("figures in {0}/soak.csv, chart in {0}/soak.svg", args.out.display());
    Ok(())
}

/// Enqueues over HTTP at the run's load, one request per job, at most 256 in flight; a request
/// the client could not start in time is counted as refused, never queued up in the client.
async fn offer(
    base: String,
    token: String,
    payload: String,
    total: Duration,
    capacity: f64,
    accepted: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
) {
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/jobs");
    let body: Arc<str> = format!(r#"{{"kind":"diag.sleep","payload":{payload}}}"#).into();
    let slots = Arc::new(tokio::sync::Semaphore::new(256));
    let start = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    loop {
        tick.tick().await;
        let target = due(start.elapsed(), total, capacity);
        while sent < target {
            sent += 1;
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                refused.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let (http, url, token, body) = (http.clone(), url.clone(), token.clone(), body.clone());
            let (accepted, refused) = (accepted.clone(), refused.clone());
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await;
                let counter = if r.is_ok_and(|r| r.status().as_u16() == 202) {
                    accepted
                } else {
                    refused
                };
                counter.fetch_add(1, Ordering::Relaxed);
                drop(permit);
            });
        }
    }
}

/// The figures the docs quote: RSS slopes, the memory bound, and how long p99 took to come
/// back to its baseline after the overload.
fn summary(samples: &[Sample]) -> String {
    if samples.len() < 4 {
        return "too few samples for a summary".into();
    }
    let end = samples.last().map_or(0.0, |s| s.minute);
    // Past the first tenth: the processes' warm-up is not a leak.
    let settled: Vec<&Sample> = samples.iter().filter(|s| s.minute >= end * 0.1).collect();
    let slope = |f: fn(&Sample) -> f64| {
        let n = settled.len() as f64;
        let (mx, my) = (
            settled.iter().map(|s| s.minute).sum::<f64>() / n,
            settled.iter().map(|s| f(s)).sum::<f64>() / n,
        );
        let cov: f64 = settled.iter().map(|s| (s.minute - mx) * (f(s) - my)).sum();
        let var: f64 = settled.iter().map(|s| (s.minute - mx).powi(2)).sum();
        if var == 0.0 { 0.0 } else { cov / var * 60.0 }
    };
    let max = |f: fn(&Sample) -> f64| samples.iter().map(f).fold(0.0, f64::max);
    let mut baseline: Vec<f64> = samples
        .iter()
        .filter(|s| s.minute >= end * 0.1 && s.minute <= end * PHASES[0].0 && s.started > 0)
        .map(|s| s.p99_ms)
        .collect();
    baseline.sort_by(f64::total_cmp);
    let base_p99 = baseline.get(baseline.len() / 2).copied().unwrap_or(0.0);
    let overload_end = end * PHASES[1].0;
    let back = samples
        .iter()
        .find(|s| s.minute > overload_end && s.started > 0 && s.p99_ms <= base_p99 * 1.5)
        .map(|s| s.minute - overload_end);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "RSS slope after warm-up: worker {:+.2} MiB/h, api {:+.2} MiB/h; peaks: worker {:.1} MiB, api {:.1} MiB",
        slope(|s| s.worker_rss_mib),
        slope(|s| s.api_rss_mib),
        max(|s| s.worker_rss_mib),
        max(|s| s.api_rss_mib),
    );
    let _ = writeln!(
        out,
        "redis memory: peak {:.1} MiB, last {:.1} MiB; backlog peak {:.0}",
        max(|s| s.redis_mib),
        samples.last().map_or(0.0, |s| s.redis_mib),
        max(|s| s.backlog as f64),
    );
    let _ = write!(
        out,
        "baseline p99 {base_p99:.1} ms; back within 1.5x of it after the overload ended: {}",
        back.map_or("never, in this run".to_string(), |m| format!("{m:.1} min"))
    );
    out
}

fn csv(samples: &[Sample]) -> String {
    let mut out = String::from(
        "minute,offered_per_sec,accepted_per_sec,started,p50_ms,p99_ms,p999_ms,backlog,worker_rss_mib,api_rss_mib,redis_mib\n",
    );
    for s in samples {
        let _ = writeln!(
            out,
            "{:.2},{:.0},{:.0},{},{:.2},{:.2},{:.2},{},{:.2},{:.2},{:.2}",
            s.minute,
            s.offered_per_sec,
            s.accepted_per_sec,
            s.started,
            s.p50_ms,
            s.p99_ms,
            s.p999_ms,
            s.backlog,
            s.worker_rss_mib,
            s.api_rss_mib,
            s.redis_mib
        );
    }
    out
}

/// Four panels sharing the time axis, each a few polylines with its own scale: a chart this
/// plain is a few dozen lines of SVG, where a plotting crate would bring a font stack for its
/// labels.
fn svg(samples: &[Sample]) -> String {
    type Series = (&'static str, &'static str, fn(&Sample) -> f64);
    let panels: [(&str, Vec<Series>); 4] = [
        (
            "RSS (MiB)",
            vec![
                ("worker", "#1f77b4", |s| s.worker_rss_mib),
                ("api", "#ff7f0e", |s| s.api_rss_mib),
            ],
        ),
        ("Redis memory (MiB)", vec![("used_memory", "#2ca02c", |s| s.redis_mib)]),
        (
            "enqueue to start (ms, log scale)",
            vec![
                ("p50", "#1f77b4", |s| s.p50_ms.max(0.1).log10()),
                ("p99", "#ff7f0e", |s| s.p99_ms.max(0.1).log10()),
                ("p99.9", "#d62728", |s| s.p999_ms.max(0.1).log10()),
            ],
        ),
        (
            "backlog (jobs) and accepted enqueues (jobs/s)",
            vec![
                ("backlog", "#9467bd", |s| s.backlog as f64),
                ("accepted/s", "#7f7f7f", |s| s.accepted_per_sec),
            ],
        ),
    ];
    let (width, panel_h, left, top) = (900.0, 200.0, 70.0, 30.0);
    let plot_w = width - left - 20.0;
    let end = samples.last().map_or(1.0, |s| s.minute).max(1e-9);
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" font-family="sans-serif" font-size="12">"#,
        top + panels.len() as f64 * (panel_h + 40.0)
    );
    out.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, (title, series)) in panels.iter().enumerate() {
        let y0 = top + i as f64 * (panel_h + 40.0);
        let log = title.contains("log");
        let (lo, hi) = series
            .iter()
            .flat_map(|(_, _, f)| samples.iter().map(f))
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if log {
            (lo.floor(), hi.ceil().max(lo.floor() + 1.0))
        } else {
            (0.0, hi.max(1.0) * 1.1)
        };
        let y = |v: f64| y0 + panel_h - (v - lo) / (hi - lo) * panel_h;
        let x = |m: f64| left + m / end * plot_w;
        let _ = write!(
            out,
            r##"<text x="{left}" y="{}" font-weight="bold">{title}</text><rect x="{left}" y="{y0}" width="{plot_w}" height="{panel_h}" fill="none" stroke="#999"/>"##,
            y0 - 8.0
        );
        // The overload stretch, shaded.
        let _ = write!(
            out,
            r##"<rect x="{}" y="{y0}" width="{}" height="{panel_h}" fill="#f2dede" opacity="0.5"/>"##,
            x(end * PHASES[0].0),
            x(end * PHASES[1].0) - x(end * PHASES[0].0)
        );
        for tick in 0..=4 {
            let v = lo + (hi - lo) * tick as f64 / 4.0;
            let label = if log {
                format!("{:.0}", 10f64.powf(v))
            } else {
                format!("{v:.0}")
            };
            let _ = write!(
                out,
                r#"<text x="{}" y="{}" text-anchor="end">{label}</text>"#,
                left - 6.0,
                y(v) + 4.0
            );
        }
        for (j, (name, color, f)) in series.iter().enumerate() {
            let points: Vec<String> = samples
                .iter()
                .map(|s| format!("{:.1},{:.1}", x(s.minute), y(f(s))))
                .collect();
            let _ = write!(
                out,
                r##"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/><text x="{}" y="{}" fill="{color}">{name}</text>"##,
                points.join(" "),
                left + 10.0 + j as f64 * 90.0,
                y0 + 16.0
            );
        }
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{end:.0} min</text>"#,
            left + plot_w,
            y0 + panel_h + 16.0
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_integrates_its_phases() {
        let total = Duration::from_secs(100);
        // 40 s at 0.8, 5 s at 2, 55 s at 0.8, of 10 jobs/s.
        assert_eq!(due(Duration::from_secs(40), total, 10.0), 320);
        assert_eq!(due(Duration::from_secs(45), total, 10.0), 420);
        assert_eq!(due(total, total, 10.0), 860);
        assert_eq!(load_at(0.42), 2.0);
        assert_eq!(load_at(0.99), 0.8);
    }
}

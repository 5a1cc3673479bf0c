//! `nightshift bench-scale`: the platform scaled out on one machine. Two API processes, two
//! schedulers, and 1, 2, then 3 worker processes against one Redis and one PostgreSQL: jobs
//! are enqueued over HTTP through both APIs, then the workers drain them. Prints throughput per
//! worker count and the lost and duplicated effects, and fails if either is not zero.
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures::{StreamExt, stream};
use nightshift_common::{
    auth::{Scope, TokenKeys},
    db,
};
use secrecy::SecretString;
use tokio::process::Child;

use super::{Ctx, stop_child};

#[derive(Debug, clap::Args)]
pub struct ScaleBenchArgs {
    /// Jobs enqueued for each worker count.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: usize,
    /// The worker process counts to measure, in order.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub workers: Vec<usize>,
    /// Jobs running at once in each worker process.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

/// One schedule, so the two schedulers have a tick to agree on without adding load.
const SCHEDULES: &str = r#"
[[schedule]]
name = "canary"
cron = "*/5 * * * * *"
kind = "noop"
misfire = "skip"
"#;

pub async fn run(config: &nightshift_common::Config, args: ScaleBenchArgs) -> anyhow::Result<()> {
    if args.jobs == 0 || args.workers.is_empty() || args.workers.contains(&0) {
        bail!("--jobs and every --workers count must be at least 1");
    }
    let ctx = Ctx::create(config).await?;
    let result = bench(&ctx, &args).await;
    ctx.remove().await?;
    result
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn bench(ctx: &Ctx, args: &ScaleBenchArgs) -> anyhow::Result<()> {
    let secret: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    let schedules = std::env::temp_dir().join(format!("{}-schedules.toml", ctx.prefix));
    std::fs::write(&schedules, SCHEDULES)?;
    let schedules = schedules.to_string_lossy().into_owned();
    let env = [
        ("NIGHTSHIFT_JWT_SECRET", secret.as_str()),
        ("NIGHTSHIFT_SCHEDULES_FILE", schedules.as_str()),
        ("NIGHTSHIFT_API_RATE_PER_MINUTE", "100000000"),
        ("NIGHTSHIFT_API_RATE_BURST", "1000000"),
        ("NIGHTSHIFT_API_IP_RATE_PER_MINUTE", "100000000"),
        ("NIGHTSHIFT_API_IP_RATE_BURST", "1000000"),
        // The measured load is diag.effect, a diagnostic kind.
        ("NIGHTSHIFT_DIAGNOSTICS", "1"),
    ];
    let mut fixed: Vec<Child> = Vec::new();
    let mut apis = Vec::new();
    for _ in 0..2 {
        let addr = format!("127.0.0.1:{}", free_port()?);
        fixed.push(ctx.spawn("api", &[&env[..], &[("NIGHTSHIFT_API_ADDR", addr.as_str())]].concat())?);
        apis.push(format!("http://{addr}"));
    }
    for _ in 0..2 {
        fixed.push(ctx.spawn("scheduler", &env)?);
    }
    let result = measure(ctx, args, &env, &apis, &secret).await;
    for child in fixed {
        stop_child(child).await;
    }
    let _ = std::fs::remove_file(&schedules);
    result
}

async fn measure(
    ctx: &Ctx,
    args: &ScaleBenchArgs,
    env: &[(&str, &str)],
    apis: &[String],
    secret: &str,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for api in apis {
        let ready = format!("{api}/health/ready");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http.get(&ready).send().await.is_ok_and(|r| r.status().is_success()) {
            if Instant::now() > deadline {
                bail!("{api} did not become ready");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let keys = TokenKeys::from_secret(&SecretString::from(secret.to_string()));
    let token = keys.issue(
        "bench-scale",
        &[Scope::JobsWrite, Scope::JobsRead],
        Duration::from_secs(3600),
    )?;
    let pool = db::connect(&ctx.bench_db_url, 2).await?;
    println!(
        "{} jobs per round through 2 API processes, 2 schedulers running, concurrency {} per worker",
        args.jobs, args.concurrency
    );
    let mut failed = false;
    for &workers in &args.workers {
        // Enqueue the whole round first, 64 requests in flight spread over both APIs.
        let start = Instant::now();
        let ids: Vec<anyhow::Result<String>> = stream::iter(0..args.jobs)
            .map(|i| {
                let (http, token, api) = (http.clone(), token.clone(), apis[i % apis.len()].clone());
                async move {
                    let resp = http
                        .post(format!("{api}/v1/jobs"))
                        .bearer_auth(token)
                        .json(&serde_json::json!({"kind": "diag.effect", "payload": {}}))
                        .send()
                        .await?;
                    let status = resp.status();
                    let body: serde_json::Value = resp.json().await?;
                    match body["id"].as_str() {
                        Some(id) if status.as_u16() == 202 => Ok(id.to_string()),
                        _ => bail!("enqueue answered {status}: {body}"),
                    }
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        let accepted: Vec<uuid::Uuid> = ids
            .into_iter()
            .map(|r| r.and_then(|id| Ok(id.parse()?)))
            .collect::<anyhow::Result<_>>()?;
        let enqueue_secs = start.elapsed().as_secs_f64();

        let start = Instant::now();
        let children = (0..workers)
            .map(|_| {
                ctx.spawn(
                    "worker",
                    &[env, &[("NIGHTSHIFT_CONCURRENCY", &args.concurrency.to_string())]].concat(),
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let count_done = || async {
            sqlx::query_scalar::<_, i64>("SELECT count(DISTINCT job_id) FROM diag_effects WHERE job_id = ANY($1)")
                .bind(&accepted)
                .fetch_one(&pool)
                .await
        };
        let deadline = Instant::now() + Duration::from_secs(600);
        while (count_done().await? as usize) < accepted.len() {
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        for child in children {
            stop_child(child).await;
        }
        let rows: Vec<(uuid::Uuid, i64)> =
            sqlx::query_as("SELECT job_id, count(*) FROM diag_effects WHERE job_id = ANY($1) GROUP BY job_id")
                .bind(&accepted)
                .fetch_all(&pool)
                .await
                .context("counting effects")?;
        let effects: HashMap<uuid::Uuid, i64> = rows.into_iter().collect();
        let lost = accepted.iter().filter(|id| !effects.contains_key(id)).count();
        let duplicates: i64 = effects.values().map(|n| n - 1).sum();
        println!(
            "{workers} worker(s): {:>7.0} jobs/s ({} jobs in {secs:.2}s; enqueued at {:.0}/s over HTTP); lost {lost}, duplicate effects {duplicates}",
            accepted.len() as f64 / secs,
            accepted.len(),
            accepted.len() as f64 / enqueue_secs,
        );
        failed |= lost > 0 || duplicates > 0;
    }
    if failed {
        bail!("jobs were lost or their effects duplicated");
    }
    Ok(())
}

//! `nightshift bench-tracing`: what exporting traces costs. The same no-op jobs, drained from a
//! paused start by one worker process exporting every run's span over OTLP/HTTP and by one
//! exporting nothing, alternated. The receiver runs in this process on the same machine: it
//! decodes each export and counts its spans, so spans the exporter dropped show as fewer than
//! one per job.
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{body::Bytes, extract::State, http::StatusCode, routing::post};
use nightshift_common::Config;
use nightshift_queue::{NewJob, Queue};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;

use super::{Ctx, cpu_secs, noop, push_paused, resume_until_done, stop_child};

#[derive(Debug, clap::Args)]
pub struct TracingBenchArgs {
    /// Jobs per drain.
    #[arg(long, default_value_t = 200_000)]
    pub jobs: usize,
    /// Rounds of the two drains, alternated.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    #[arg(long, default_value_t = 512)]
    pub concurrency: usize,
    /// Drain without the job history (the worker's fastest path).
    #[arg(long)]
    pub no_history: bool,
}

pub async fn run(config: &Config, args: TracingBenchArgs) -> anyhow::Result<()> {
    let ctx = Ctx::create(config).await?;
    let result = bench(&ctx, &args).await;
    ctx.remove().await?;
    result
}

async fn bench(ctx: &Ctx, args: &TracingBenchArgs) -> anyhow::Result<()> {
    let spans = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/v1/traces", post(receive))
        .with_state(spans.clone());
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await });

    let conn = nightshift_queue::connect_redis(&ctx.config.redis_url).await?;
    let queue = ctx.queue(&conn);
    println!(
        "{} no-op jobs per drain, concurrency {}, history {}; receiver at {endpoint}",
        args.jobs,
        args.concurrency,
        if args.no_history { "off" } else { "on" }
    );
    for round in 1..=args.rounds {
        for exporting in [false, true] {
            let concurrency = args.concurrency.to_string();
            let mut env = vec![("NIGHTSHIFT_CONCURRENCY", concurrency.as_str()), ("RUST_LOG", "warn")];
            if args.no_history {
                env.push(("NIGHTSHIFT_HISTORY_OFF", "1"));
            }
            if exporting {
                env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()));
            }
            let mut cmd = ctx.command("worker", &env)?;
            if !exporting {
                cmd.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                    .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
            }
            let before = spans.load(Ordering::Relaxed);
            let (rate, cpu_us) = drain(&queue, cmd, args.jobs).await?;
            let per_job = (spans.load(Ordering::Relaxed) - before) as f64 / args.jobs as f64;
            let what = if exporting { "exporting" } else { "off      " };
            println!(
                "round {round}: tracing {what}: {rate:>8.0} jobs/s, worker CPU {cpu_us:>5.0} µs/job, {per_job:.2} spans/job received"
            );
        }
    }
    receiver.abort();
    Ok(())
}

/// Pushes the jobs into the paused queue, starts the worker, resumes the queue and times the
/// drain; stops the worker (which flushes its exporter). The rate, and the worker's CPU per job.
async fn drain(queue: &Queue, mut cmd: tokio::process::Command, n: usize) -> anyhow::Result<(f64, f64)> {
    let jobs: Vec<NewJob> = (0..n).map(|_| noop()).collect();
    let before = push_paused(queue, &jobs).await?;
    let child = cmd.spawn()?;
    let pid = child.id().unwrap_or_default();
    // Started and connected before the clock starts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu = cpu_secs(pid);
    let rate = resume_until_done(queue, before, n).await?;
    let cpu_us = (cpu_secs(pid) - cpu) * 1e6 / n as f64;
    stop_child(child).await;
    Ok((rate, cpu_us))
}

async fn receive(State(spans): State<Arc<AtomicU64>>, body: Bytes) -> (StatusCode, Vec<u8>) {
    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let n: usize = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    spans.fetch_add(n as u64, Ordering::Relaxed);
    (StatusCode::OK, ExportTraceServiceResponse::default().encode_to_vec())
}

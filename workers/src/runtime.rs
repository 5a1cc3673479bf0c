//! The worker process: one apalis worker per queue, all on one apalis `Monitor`, each over
//! its own `RedisBackend`, sharing one Redis connection, one database pool and one history
//! writer.
use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use apalis_core::{monitor::Monitor, task::Task, worker::builder::WorkerBuilder};
use futures::future::BoxFuture;
use nightshift_common::{Config, db, history};
use nightshift_queue::{
    Backoff, Job, Outcome, RedisBackend, WorkerIdentity, WorkerOptions, check_redis_settings, connect_redis,
};
use tower_service::Service;

use crate::jobs::{self, JobEnv};

/// The service apalis calls for each job: finds the kind's handler and records metrics.
#[derive(Clone)]
struct Dispatcher {
    env: Arc<JobEnv>,
}

impl Service<Task<Job>> for Dispatcher {
    type Response = Outcome;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Outcome, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, task: Task<Job>) -> Self::Future {
        let env = self.env.clone();
        Box::pin(async move {
            let job = task.args;
            let started = Instant::now();
            let outcome = jobs::dispatch(env, &job).await;
            let label = match &outcome {
                Outcome::Succeeded(_) => "succeeded",
                Outcome::Retry { .. } => "failed",
                Outcome::Dead(_) => "dead",
                Outcome::Cancelled(_) => "cancelled",
                Outcome::Snooze { .. } => "snoozed",
            };
            let (queue, kind) = (job.queue.to_string(), job.kind.clone());
            metrics::histogram!("nightshift_job_duration_seconds", "queue" => queue.clone(), "kind" => kind.clone())
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("nightshift_jobs_total", "queue" => queue, "kind" => kind, "outcome" => label)
                .increment(1);
            Ok(outcome)
        })
    }
}

/// Runs workers for every queue until `shutdown` resolves, then drains: running jobs finish
/// (up to the shutdown timeout), leased-but-unstarted jobs go back to their queue.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let missing = jobs::missing_handlers();
    anyhow::ensure!(missing.is_empty(), "no handler for catalog kinds {missing:?}");
    let mut conn = connect_redis(&config.redis_url).await.context("connecting to Redis")?;
    check_redis_settings(&mut conn, config.allow_eviction).await?;
    nightshift_queue::clock::follow(conn.clone()).await;
    // Ten connections, whatever the concurrency: on two cores more active PostgreSQL
    // backends were measured slower (1,300 vs 1,600 projections/s), not faster.
    let db = db::connect(&config.database_url, 10)
        .await
        .context("connecting to PostgreSQL")?;
    let recovery = tokio::spawn(nightshift_common::recovery::watch(
        db.clone(),
        conn.clone(),
        config.queue.clone(),
        |kind, payload| nightshift_catalog::find(kind).map(|spec| spec.new_job(payload)),
    ));
    let env = Arc::new(JobEnv::new(&config, db.clone(), conn)?);
    let queues = env.queues.clone();
    let (history_tx, history_task) = if config.history {
        let (tx, task) = history::spawn_writer(db.clone());
        (Some(tx), Some(task))
    } else {
        (None, None)
    };
    let identity = WorkerIdentity::generate();
    tracing::info!(worker = %identity.id, concurrency = config.concurrency, "worker starting");

    let mut monitor = Monitor::new().shutdown_timeout(config.shutdown_timeout);
    for queue in queues.iter() {
        let options = WorkerOptions {
            concurrency: config.concurrency,
            backoff: kind_backoff,
            identity: identity.clone(),
            span_hook: Some(crate::tracing_hook::relate_run),
        };
        let backend = RedisBackend::start(queue.clone(), &config.redis_url, options, history_tx.clone()).await?;
        // apalis builds workers through a factory so it can restart them; our backend holds
        // live leases and is built once, so a restart is not offered.
        let slot = Mutex::new(Some(backend));
        let name = format!("{}@{}", queue.name(), identity.id);
        let env = env.clone();
        monitor = monitor.register(move |_| {
            let backend = slot
                .lock()
                .expect("slot")
                .take()
                .expect("queue backends are not restarted");
            WorkerBuilder::new(name.as_str())
                .backend(backend)
                .build(Dispatcher { env: env.clone() })
        });
    }
    drop(history_tx);
    let gauges = tokio::spawn(nightshift_catalog::export_queue_depth(queues.clone()));
    let pump = tokio::spawn(crate::batch_pump::run(
        db.clone(),
        queues.clone(),
        identity.id.to_string(),
        config.batch_orphan_age,
    ));
    monitor
        .run_with_signal(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing running jobs");
            Ok(())
        })
        .await
        .context("worker monitor")?;
    gauges.abort();
    pump.abort();
    recovery.abort();
    if let Some(task) = history_task {
        // The writer ends once the backends' loops dropped their senders, after a last flush.
        if tokio::time::timeout(Duration::from_secs(15), task).await.is_err() {
            tracing::warn!("job history writer did not finish flushing in time");
        }
    }
    tracing::info!(worker = %identity.id, "worker stopped");
    Ok(())
}

/// A kind's declared backoff, for every failure that names no delay: its handler's errors, its
/// panics and its timeouts alike.
fn kind_backoff(kind: &str) -> Backoff {
    nightshift_catalog::catalog()
        .get(kind)
        .map_or_else(Backoff::default, |spec| spec.policy.backoff)
}

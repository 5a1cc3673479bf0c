//! The worker process: one apalis worker per queue, all on one apalis `Monitor`, each over
//! its own `RedisBackend`, sharing one Redis connection, one database pool and one history
//! writer.
use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use apalis_core::{monitor::Monitor, task::Task, worker::builder::WorkerBuilder};
use futures::future::BoxFuture;
use nightshift_common::{Config, db, history};
use nightshift_queue::RedisConn;
use nightshift_queue::{
    Backoff, Job, Outcome, Queue, QueueConfig, RedisBackend, WorkerIdentity, WorkerOptions, check_redis_settings,
    connect_redis,
};
use tower_service::Service;

use crate::jobs::{self, JobEnv};

/// Handles to every queue of the catalog, for enqueuing.
#[derive(Clone, Debug)]
pub struct Queues {
    by_name: Arc<BTreeMap<&'static str, Queue>>,
}

impl Queues {
    pub fn new(conn: RedisConn, config: &QueueConfig) -> Self {
        let by_name = jobs::queue_names()
            .into_iter()
            .map(|name| (name, Queue::with_connection(conn.clone(), name, config.clone())))
            .collect();
        Queues {
            by_name: Arc::new(by_name),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Queue> {
        self.by_name.get(name)
    }

    /// The queue a kind is pushed to.
    pub fn for_kind(&self, kind: &str) -> Option<&Queue> {
        jobs::find(kind).and_then(|spec| self.get(spec.policy.queue))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Queue> {
        self.by_name.values()
    }

    /// Registers every queue in Redis so operators see even the empty ones.
    pub async fn register_all(&self) -> Result<(), nightshift_queue::QueueError> {
        for q in self.iter() {
            q.register().await?;
        }
        Ok(())
    }
}

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

/// Publishes jobs per state of every queue as gauges, for dashboards and autoscalers. Every
/// worker exports the same figures; a scraper may take any one.
pub async fn export_queue_depth(queues: Queues) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        for q in queues.iter() {
            let Ok(c) = q.counts().await else { continue };
            for (state, n) in [
                ("scheduled", c.scheduled),
                ("queued", c.queued),
                ("running", c.running),
                ("retrying", c.retrying),
                ("dead", c.dead),
            ] {
                metrics::gauge!("nightshift_queue_jobs", "queue" => q.name().to_string(), "state" => state)
                    .set(n as f64);
            }
        }
    }
}

/// Runs workers for every queue until `shutdown` resolves, then drains: running jobs finish
/// (up to the shutdown timeout), leased-but-unstarted jobs go back to their queue.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let mut conn = connect_redis(&config.redis_url).await.context("connecting to Redis")?;
    check_redis_settings(&mut conn, config.allow_eviction).await?;
    // Ten connections, whatever the concurrency: on two cores more active PostgreSQL
    // backends were measured slower (1,300 vs 1,600 projections/s), not faster.
    let db = db::connect(&config.database_url, 10)
        .await
        .context("connecting to PostgreSQL")?;
    let recovery = tokio::spawn(nightshift_common::recovery::watch(
        db.clone(),
        conn.clone(),
        config.queue.clone(),
        |kind, payload| jobs::find(kind).map(|spec| spec.new_job(payload)),
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
            backoff: Backoff::default(),
            identity: identity.clone(),
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
    let gauges = tokio::spawn(export_queue_depth(queues.clone()));
    monitor
        .run_with_signal(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing running jobs");
            Ok(())
        })
        .await
        .context("worker monitor")?;
    gauges.abort();
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

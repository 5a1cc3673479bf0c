//! `RedisBackend`: apalis-core's `Backend` over our Redis protocol.
//!
//! apalis-core's worker pulls tasks as long as the backend and the service are ready; it has
//! no notion of leases or batches. So the backend owns them: it leases jobs in batches sized
//! to its free slots, hands them out one at a time, and its middleware layer (`LeaseLayer`)
//! wraps every run to renew the lease, catch panics, apply the timeout and batch the ack.
use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use apalis_core::{
    backend::{Backend, BackendConfig, finalize::Ephemeral},
    task::Task,
    worker::context::WorkerContext,
};
use atomic_waker::AtomicWaker;
use futures::{FutureExt, future::BoxFuture, stream::AbortHandle};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::{
    QueueError,
    identity::{self, WorkerIdentity},
    job::{AttemptReport, Backoff, Job, JobState, Outcome},
    lease::LeaseLayer,
    loops,
    protocol::Fetched,
    queue::Queue,
};

/// Options of one worker's backend.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Most jobs running at once in this process for this queue.
    pub concurrency: usize,
    /// A kind's backoff, by its name: the delay of a failure that gave none (an error without
    /// a delay, a panic, a timeout). The queue knows no kinds; the process that runs them does.
    pub backoff: fn(&str) -> Backoff,
    pub identity: WorkerIdentity,
    /// Called with each run's span before it starts: where the process ties the span to the
    /// context the job was created in (tracing), which this crate knows nothing of.
    pub span_hook: Option<fn(&tracing::Span, &Job)>,
}

pub(crate) struct RunningLease {
    pub member: String,
    pub abort: AbortHandle,
    /// Renewal stops here (the job's timeout): a handler blocked past it loses its lease.
    pub renew_until: Option<std::time::Instant>,
    /// Where the run is ([`RunStage`]), shared by the run and the renewer.
    pub stage: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

/// A run's stage, as the run and the renewer agree on it (compare-and-swap, so exactly one of
/// "the outcome goes to Redis" and "the lease is gone" wins).
pub(crate) struct RunStage;

impl RunStage {
    pub const RUNNING: u8 = 0;
    /// Set by the renewer when Redis no longer holds the lease: the run is stopped and records
    /// nothing, since the job is someone else's now. After a failover the same job, re-derived,
    /// may be leased again by this worker under the same member, which an outcome would hit.
    pub const LOST: u8 = 1;
    /// The handler is done and its outcome is on its way to Redis: a renewal that finds the
    /// lease gone meanwhile (the outcome landed first) is not a lost lease and stops nothing.
    pub const SETTLING: u8 = 2;
}

pub(crate) struct AckRequest {
    pub job: Job,
    pub outcome: Outcome,
    pub retry_delay: Duration,
    pub done: oneshot::Sender<Option<JobState>>,
}

/// State shared by the backend, its middleware and its background loops.
pub(crate) struct BackendState {
    pub queue: Queue,
    pub options: WorkerOptions,
    pub running: AtomicUsize,
    pub slot_free: AtomicWaker,
    pub leases: Mutex<HashMap<String, RunningLease>>,
    pub acks: mpsc::UnboundedSender<AckRequest>,
    pub reports: Option<mpsc::Sender<AttemptReport>>,
    pub stop: CancellationToken,
    /// Told when a job starts: its lease, already a round trip old, is renewed soon.
    pub new_lease: tokio::sync::Notify,
}

impl BackendState {
    pub(crate) fn worker_id(&self) -> &str {
        &self.options.identity.id
    }
}

pub struct RedisBackend {
    shared: Arc<BackendState>,
    buffer: VecDeque<Job>,
    fetching: Option<BoxFuture<'static, Result<Fetched, QueueError>>>,
    idle: Option<BoxFuture<'static, ()>>,
    closing: Option<BoxFuture<'static, Result<(), QueueError>>>,
    wake: watch::Receiver<u64>,
    fetch_failures: u32,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("queue", &self.shared.queue.name())
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

impl RedisBackend {
    /// Starts the backend's loops (acks, lease renewal, reaper, heartbeat, wake-ups).
    /// `reports` receives every state change after Redis committed it (job history).
    pub async fn start(
        queue: Queue,
        redis_url: &str,
        options: WorkerOptions,
        reports: Option<mpsc::Sender<AttemptReport>>,
    ) -> Result<Self, QueueError> {
        queue.register().await?;
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let (wake_tx, wake_rx) = watch::channel(0u64);
        let shared = Arc::new(BackendState {
            queue,
            options,
            running: AtomicUsize::new(0),
            slot_free: AtomicWaker::new(),
            leases: Mutex::new(HashMap::new()),
            acks: ack_tx,
            reports,
            stop: CancellationToken::new(),
            new_lease: tokio::sync::Notify::new(),
        });
        let client = crate::conn::pubsub_client(redis_url)?;
        loops::spawn_all(shared.clone(), ack_rx, wake_tx, client);
        crate::renewer::register(shared.clone(), redis_url);
        Ok(RedisBackend {
            shared,
            buffer: VecDeque::new(),
            fetching: None,
            idle: None,
            closing: None,
            wake: wake_rx,
            fetch_failures: 0,
        })
    }

    fn free_slots(&self) -> usize {
        let busy = self.shared.running.load(Ordering::Acquire) + self.buffer.len();
        self.shared.options.concurrency.saturating_sub(busy)
    }

    fn start_fetch(&mut self, count: usize) {
        // Mark wake-ups seen before asking: one that arrives during the fetch is not lost.
        self.wake.borrow_and_update();
        let shared = self.shared.clone();
        self.fetching = Some(async move { shared.queue.fetch(count, shared.worker_id()).await }.boxed());
    }

    /// Waits for a push notification, the next scheduled job, or the fallback poll.
    fn start_idle(&mut self, next_due_in: Option<Duration>) {
        let mut wait = self.shared.queue.config().idle_poll;
        if let Some(due_in) = next_due_in {
            wait = wait.min(due_in.max(Duration::from_millis(1)));
        }
        let mut wake = self.wake.clone();
        let stop = self.shared.stop.clone();
        self.idle = Some(
            async move {
                tokio::select! {
                    _ = wake.changed() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => {}
                }
            }
            .boxed(),
        );
    }

    fn start_backoff(&mut self) {
        self.fetch_failures += 1;
        const FETCH: Backoff = Backoff {
            base: Duration::from_millis(200),
            max: Duration::from_secs(2),
        };
        let wait = FETCH.ceiling(self.fetch_failures);
        self.idle = Some(tokio::time::sleep(wait).boxed());
    }
}

impl Drop for RedisBackend {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

impl Backend for RedisBackend {
    type Task = Task<Job>;
    type Error = QueueError;

    fn poll_ready(&mut self, cx: &mut Context<'_>, _: &WorkerContext) -> Poll<Result<(), Self::Error>> {
        let full = || self.shared.running.load(Ordering::Acquire) >= self.shared.options.concurrency;
        if !full() {
            return Poll::Ready(Ok(()));
        }
        self.shared.slot_free.register(cx.waker());
        if full() { Poll::Pending } else { Poll::Ready(Ok(())) }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>, _: &WorkerContext) -> Poll<Option<Result<Self::Task, Self::Error>>> {
        loop {
            if let Some(job) = self.buffer.pop_front() {
                self.shared.running.fetch_add(1, Ordering::AcqRel);
                return Poll::Ready(Some(Ok(Task::new(job))));
            }
            if let Some(fetch) = self.fetching.as_mut() {
                let result = futures::ready!(fetch.poll_unpin(cx));
                self.fetching = None;
                match result {
                    Ok(fetched) if fetched.jobs.is_empty() => self.start_idle(fetched.next_due_in),
                    Ok(fetched) => {
                        self.fetch_failures = 0;
                        self.buffer.extend(fetched.jobs);
                    }
                    // A Redis outage must not end the worker: apalis stops on backend errors.
                    Err(e) => {
                        tracing::warn!(queue = %self.shared.queue.name(), error = %e, "fetch failed; backing off");
                        self.start_backoff();
                    }
                }
                continue;
            }
            if let Some(idle) = self.idle.as_mut() {
                futures::ready!(idle.poll_unpin(cx));
                self.idle = None;
            }
            let free = self.free_slots().min(self.shared.queue.config().fetch_batch);
            if free == 0 {
                self.shared.slot_free.register(cx.waker());
                if self.free_slots() == 0 {
                    return Poll::Pending;
                }
                continue;
            }
            self.start_fetch(free);
        }
    }

    /// Graceful shutdown: apalis calls this once running jobs finished. Jobs leased but never
    /// started go back to the queue at once instead of waiting for their lease to expire.
    fn poll_close(&mut self, cx: &mut Context<'_>, _: &WorkerContext) -> Poll<Result<(), Self::Error>> {
        if self.closing.is_none() {
            let fetching = self.fetching.take();
            let mut unstarted: Vec<Job> = self.buffer.drain(..).collect();
            let shared = self.shared.clone();
            self.closing = Some(
                async move {
                    if let Some(fetch) = fetching
                        && let Ok(f) = fetch.await
                    {
                        unstarted.extend(f.jobs);
                    }
                    let result = if unstarted.is_empty() {
                        Ok(())
                    } else {
                        let released = shared.queue.release(&unstarted).await;
                        tracing::info!(queue = %shared.queue.name(), released = ?released, "returned unstarted jobs");
                        released.map(|_| ())
                    };
                    shared.stop.cancel();
                    let mut conn = shared.queue.connection();
                    let prefix = shared.queue.config().prefix.clone();
                    if let Err(e) = identity::deregister(&mut conn, &prefix, &shared.options.identity).await {
                        tracing::warn!(error = %e, "could not deregister worker");
                    }
                    result
                }
                .boxed(),
            );
        }
        self.closing.as_mut().map_or(Poll::Ready(Ok(())), |c| c.poll_unpin(cx))
    }
}

impl BackendConfig for RedisBackend {
    type Args = Job;
    type Id = String;
    type Kind = Ephemeral;
    type Config = crate::QueueConfig;
    type Layer = LeaseLayer;

    fn config(&self) -> &Self::Config {
        self.shared.queue.config()
    }

    fn middleware(&mut self, _: &mut WorkerContext) -> Self::Layer {
        LeaseLayer::new(self.shared.clone())
    }
}

//! The backend's middleware: everything that must wrap each run of a job.
use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    task::{Context, Poll},
};

use apalis_core::{error::BoxDynError, task::Task};
use futures::{
    FutureExt,
    future::{AbortHandle, Abortable, BoxFuture},
};
use tokio::sync::oneshot;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use crate::{
    backend::{AckRequest, BackendState, RunStage, RunningLease},
    job::{Job, Outcome},
};

#[derive(Clone)]
pub struct LeaseLayer {
    shared: Arc<BackendState>,
}

impl LeaseLayer {
    pub(crate) fn new(shared: Arc<BackendState>) -> Self {
        LeaseLayer { shared }
    }
}

impl<S> Layer<S> for LeaseLayer {
    type Service = LeaseService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        LeaseService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
pub struct LeaseService<S> {
    inner: S,
    shared: Arc<BackendState>,
}

impl<S> Service<Task<Job>> for LeaseService<S>
where
    S: Service<Task<Job>, Response = Outcome>,
    S::Error: Into<BoxDynError>,
    S::Future: Send + 'static,
{
    type Response = ();
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<(), BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, task: Task<Job>) -> Self::Future {
        let job = task.args.clone();
        // One span per run. The fields OpenTelemetry's messaging conventions ask for are
        // declared empty and filled by the span hook only when traces are exported: every log
        // layer formats a span's fields when the span opens, once per job.
        use tracing::field::Empty;
        let span = tracing::info_span!(
            "job",
            job.id = %job.id,
            job.kind = %job.kind,
            job.attempt = job.attempt,
            queue = %job.queue,
            otel.name = Empty,
            otel.kind = Empty,
            messaging.system = Empty,
            messaging.operation.name = Empty,
            messaging.destination.name = Empty,
            messaging.message.id = Empty,
            trace_id = Empty,
            span_id = Empty,
        );
        if let Some(hook) = self.shared.options.span_hook {
            hook(&span, &job);
        }
        let (abort, registration) = AbortHandle::new_pair();
        let stage = Arc::new(AtomicU8::new(RunStage::RUNNING));
        self.shared.leases.lock().expect("lease registry poisoned").insert(
            job.id.clone(),
            RunningLease {
                member: job.lease.clone(),
                abort,
                renew_until: job.timeout.map(|t| std::time::Instant::now() + t),
                stage: stage.clone(),
            },
        );
        self.shared.new_lease.notify_one();
        let run = Abortable::new(AssertUnwindSafe(self.inner.call(task)).catch_unwind(), registration);
        let shared = self.shared.clone();
        async move {
            let outcome = match job.timeout {
                Some(limit) => match tokio::time::timeout(limit, run).await {
                    Ok(r) => outcome_of(r),
                    Err(_) => Outcome::retry(format!("timed out after {}s", limit.as_secs_f64())),
                },
                None => outcome_of(run.await),
            };
            if let Outcome::Retry { error, .. } | Outcome::Dead(error) = &outcome {
                // A handler's error may quote a client's payload: escaped (Debug) and bounded,
                // so it can neither forge a line nor flood the log. The job keeps it whole.
                let shown: String = error.chars().take(500).collect();
                tracing::warn!(error = ?shown, "job failed");
            }
            let settling = stage.compare_exchange(
                RunStage::RUNNING,
                RunStage::SETTLING,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            if settling.is_err() {
                // Stopped because the lease is gone: nothing to record, the slot is free.
                forget(&shared, &job.id, &stage);
                return Err("lease lost: the job was stopped and is someone else's now".into());
            }
            let retry_delay = match &outcome {
                Outcome::Retry { after: Some(d), .. } | Outcome::Snooze { after: d, .. } => *d,
                _ => (shared.options.backoff)(&job.kind).delay(job.attempt),
            };
            let (done, confirmed) = oneshot::channel();
            let id = job.id.clone();
            let sent = shared.acks.send(AckRequest {
                job,
                outcome,
                retry_delay,
                done,
            });
            // The slot is freed only once the outcome is in Redis: a process that dies before
            // that leaves the lease to expire, and the job runs again.
            let state = match sent {
                Ok(()) => confirmed.await.ok().flatten(),
                Err(_) => None,
            };
            // The lease is renewed until the outcome is in Redis: an ack slowed or retried by a
            // bad link must not let the lease lapse and the finished job run again.
            forget(&shared, &id, &stage);
            match state {
                Some(_) => Ok(()),
                None => Err("outcome not recorded: lease was lost or the worker is stopping".into()),
            }
        }
        .instrument(span)
        .boxed()
    }
}

/// Frees the run's slot and removes its lease from the registry, unless a newer run of the same
/// job (re-derived and leased again by this worker) holds the entry now.
fn forget(shared: &BackendState, id: &str, stage: &Arc<AtomicU8>) {
    let mut registry = shared.leases.lock().expect("lease registry poisoned");
    if registry.get(id).is_some_and(|l| Arc::ptr_eq(&l.stage, stage)) {
        registry.remove(id);
    }
    drop(registry);
    shared.running.fetch_sub(1, Ordering::AcqRel);
    shared.slot_free.wake();
}

type RunResult<E> = Result<Result<Result<Outcome, E>, Box<dyn std::any::Any + Send>>, futures::future::Aborted>;

fn outcome_of<E: Into<BoxDynError>>(run: RunResult<E>) -> Outcome {
    match run {
        Ok(Ok(Ok(outcome))) => outcome,
        Ok(Ok(Err(e))) => Outcome::retry(e.into().to_string()),
        Ok(Err(panic)) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Outcome::retry(format!("panicked: {msg}"))
        }
        Err(_) => Outcome::Cancelled("cancelled while running".into()),
    }
}

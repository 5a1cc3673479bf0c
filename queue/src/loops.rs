//! Background loops of a worker backend (lease renewal has a thread of its own: `renewer`).
//! Each ends when the backend stops.
use std::{sync::Arc, sync::atomic::Ordering, time::Duration};

use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::{
    backend::{AckRequest, BackendState},
    clock, identity,
    job::{AttemptReport, Backoff},
    protocol::Ack,
};

const ACK_BATCH: usize = 1024;

pub(crate) fn spawn_all(
    shared: Arc<BackendState>,
    acks: mpsc::UnboundedReceiver<AckRequest>,
    wake: watch::Sender<u64>,
    client: redis::Client,
) {
    tokio::spawn(ack_loop(shared.clone(), acks));
    tokio::spawn(reap_loop(shared.clone()));
    tokio::spawn(heartbeat_loop(shared.clone()));
    tokio::spawn(wake_loop(shared, wake, client));
}

/// Writes outcomes in batches: whatever finished while the previous batch was in flight goes
/// in the next call, so the batch grows with load and latency stays one round trip when idle.
async fn ack_loop(shared: Arc<BackendState>, mut rx: mpsc::UnboundedReceiver<AckRequest>) {
    let mut batch: Vec<AckRequest> = Vec::with_capacity(ACK_BATCH);
    let mut failures = 0u32;
    loop {
        // Stop is only signalled after every running job got its ack (apalis drains first).
        let received = tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, ACK_BATCH) => n,
            _ = shared.stop.cancelled() => 0,
        };
        if received == 0 {
            return;
        }
        let (finished_at_ms, states) = loop {
            let acks: Vec<Ack<'_>> = batch
                .iter()
                .map(|r| Ack {
                    job: &r.job,
                    outcome: &r.outcome,
                    retry_delay: r.retry_delay,
                })
                .collect();
            match shared.queue.ack(&acks).await {
                Ok(written) => break written,
                // Keep the outcomes and try again: the jobs' slots stay busy meanwhile, and if
                // the process dies first their leases expire and they run again.
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, pending = batch.len(), "ack failed; retrying");
                    const ACK: Backoff = Backoff {
                        base: Duration::from_millis(100),
                        max: Duration::from_millis(3200),
                    };
                    tokio::time::sleep(ACK.ceiling(failures)).await;
                }
            }
        };
        failures = 0;
        for (req, state) in batch.drain(..).zip(states) {
            let _ = req.done.send(state);
            let (Some(state), Some(reports)) = (state, &shared.reports) else {
                if state.is_none() {
                    tracing::warn!(job.id = %req.job.id, "ack refused: the lease had expired and the job was taken back");
                }
                continue;
            };
            let (error, result) = match req.outcome {
                crate::Outcome::Succeeded(r) => (None, r),
                crate::Outcome::Retry { error, .. }
                | crate::Outcome::Dead(error)
                | crate::Outcome::Cancelled(error)
                | crate::Outcome::Snooze { reason: error, .. } => (Some(error), None),
            };
            let job = req.job;
            // A snooze gave its attempt back.
            let attempt = if state == crate::JobState::Scheduled {
                job.attempt.saturating_sub(1)
            } else {
                job.attempt
            };
            let report = AttemptReport {
                id: job.id,
                queue: job.queue,
                kind: job.kind,
                payload: Some(job.payload),
                state,
                attempt,
                max_attempts: Some(job.max_attempts),
                created_at_ms: Some(job.created_at_ms),
                started_at_ms: Some(job.started_at_ms),
                finished_at_ms,
                error,
                result,
                worker: shared.worker_id().to_string(),
            };
            if reports.send(report).await.is_err() {
                tracing::warn!("job history receiver closed");
            }
        }
    }
}

async fn reap_loop(shared: Arc<BackendState>) {
    let every = shared.queue.config().reap_interval;
    loop {
        match shared.queue.reap(shared.worker_id()).await {
            Ok(reaped) => {
                for r in reaped {
                    tracing::warn!(job.id = %r.id, job.kind = %r.kind, lost_by = %r.worker, state = %r.state, attempts = r.attempts, "lease expired; job taken back");
                    if let Some(reports) = &shared.reports {
                        let _ = reports
                            .send(AttemptReport {
                                id: r.id,
                                queue: shared.queue.name_arc(),
                                kind: r.kind,
                                payload: None,
                                state: r.state,
                                attempt: r.attempts,
                                max_attempts: None,
                                created_at_ms: None,
                                started_at_ms: None,
                                finished_at_ms: clock::now_ms(),
                                error: Some(format!("lease expired: worker {} stopped renewing", r.worker)),
                                result: None,
                                worker: r.worker,
                            })
                            .await;
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "reap failed"),
        }
        tokio::select! {
            _ = shared.stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn heartbeat_loop(shared: Arc<BackendState>) {
    let every = shared.queue.config().heartbeat_interval;
    let mut conn = shared.queue.connection();
    let prefix = shared.queue.config().prefix.clone();
    loop {
        let running = shared.running.load(Ordering::Relaxed);
        let ttl = (every.as_secs() * 3).max(3);
        if let Err(e) = identity::heartbeat(
            &mut conn,
            &prefix,
            &shared.options.identity,
            shared.queue.name(),
            shared.options.concurrency,
            running,
            ttl,
        )
        .await
        {
            tracing::debug!(error = %e, "heartbeat failed");
        }
        tokio::select! {
            _ = shared.stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Turns pushes into wake-ups: an idle worker starts a new job within a round trip of its push
/// instead of at its next poll. Resubscribes after Redis restarts, and after a Redis that stops
/// answering (a stalled server, a network blackhole keep a subscription open and silent for
/// ever): connecting and subscribing are bounded, and a quiet subscription is pinged.
async fn wake_loop(shared: Arc<BackendState>, wake: watch::Sender<u64>, client: redis::Client) {
    const BOUND: Duration = Duration::from_secs(5);
    const QUIET: Duration = Duration::from_secs(15);
    let channel = shared.queue.keys().wake.clone();
    let timed_out = || redis::RedisError::from((redis::ErrorKind::Io, "wake-up subscription timed out"));
    loop {
        let session = async {
            let mut pubsub = tokio::time::timeout(BOUND, client.get_async_pubsub())
                .await
                .map_err(|_| timed_out())??;
            tokio::time::timeout(BOUND, pubsub.subscribe(&channel))
                .await
                .map_err(|_| timed_out())??;
            let (mut sink, mut messages) = pubsub.split();
            // Anything pushed while we were not subscribed: look now.
            wake.send_modify(|n| *n += 1);
            loop {
                match tokio::time::timeout(QUIET, messages.next()).await {
                    Ok(Some(_)) => wake.send_modify(|n| *n += 1),
                    Ok(None) => return Ok::<(), redis::RedisError>(()),
                    // Quiet: ask the server whether it is still there.
                    Err(_) => {
                        tokio::time::timeout(BOUND, sink.ping::<redis::Value>())
                            .await
                            .map_err(|_| timed_out())??;
                    }
                }
            }
        };
        tokio::select! {
            _ = shared.stop.cancelled() => return,
            r = session => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "wake-up subscription failed");
                }
            }
        }
        tokio::select! {
            _ = shared.stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

//! Lease renewal on a thread of its own. A handler that blocks a runtime thread (a CPU-bound
//! loop, a synchronous call) must not cost the jobs of its process their leases: renewing on
//! the worker's runtime would wait behind it, the leases would lapse and a live job would run
//! twice. So each process renews from one dedicated OS thread, with a small runtime and a Redis
//! connection of its own; the handlers keep their runtime. A blocked handler still cannot
//! hold its lease for ever: renewal stops at the job's timeout (the runtime would have cut it
//! there, had it been free), the lease lapses and the reaper gives the job another attempt.
//!
//! A new lease is renewed within a tenth of the lease (it reached the worker a round trip after
//! Redis granted it; waiting a full period on a slow link would use up most of it), at most one
//! extra round per tenth of a lease however many jobs start. Rounds start every third of the
//! lease whatever a round trip costs (a slow link must not stretch the period by its latency),
//! and a failed round (a dropped connection) is tried again at once on a second connection kept
//! for it: reconnecting first would cost a handshake's round trip, which on a link as slow as
//! half a lease lets the lease lapse. Renewal lag (how much longer than a period passed between
//! two renewals that reached Redis) is exported as `nightshift_lease_renewal_lag_seconds` and
//! logged past a third of the lease.
use std::{
    sync::{
        Arc, OnceLock,
        atomic::Ordering::{AcqRel, Acquire},
    },
    time::{Duration, Instant},
};

use tokio::sync::mpsc;

use crate::{
    Queue,
    backend::{BackendState, RunStage},
    conn::connect_redis,
};

struct Registration {
    shared: Arc<BackendState>,
    redis_url: String,
}

/// Renews `shared`'s leases from the process's renewal thread until its backend stops.
pub(crate) fn register(shared: Arc<BackendState>, redis_url: &str) {
    static THREAD: OnceLock<mpsc::UnboundedSender<Registration>> = OnceLock::new();
    let tx = THREAD.get_or_init(|| {
        let (tx, mut rx) = mpsc::unbounded_channel::<Registration>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for lease renewal");
        std::thread::Builder::new()
            .name("lease-renewal".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(r) = rx.recv().await {
                        tokio::spawn(renew_loop(r.shared, r.redis_url));
                    }
                });
            })
            .expect("a thread for lease renewal");
        tx
    });
    let _ = tx.send(Registration {
        shared,
        redis_url: redis_url.to_string(),
    });
}

async fn renew_loop(shared: Arc<BackendState>, redis_url: String) {
    let config = shared.queue.config().clone();
    let every = config.lease / 3;
    // Two connections made on this thread's runtime, so their I/O never waits for the
    // workers'; a round that fails on one is tried again on the other.
    let mut queues = Vec::with_capacity(2);
    while queues.len() < 2 {
        match connect_redis(&redis_url).await {
            Ok(mut conn) => {
                // Loaded now, so the first renewal is one round trip, not a NOSCRIPT and a
                // second try: on a slow link that round trip is a good part of a lease.
                if let Err(e) = crate::scripts::SCRIPTS.renew.load_async(&mut conn).await {
                    tracing::debug!(error = %e, "renewal script not preloaded");
                }
                queues.push(Queue::with_connection(conn, shared.queue.name(), config.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "lease renewal cannot reach Redis; retrying");
                tokio::select! {
                    _ = shared.stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    let mut using = 0;
    const RETRY: Duration = Duration::from_millis(100);
    let mut rounds = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let floor = config.lease / 10;
    let mut renewed = Instant::now();
    let mut round = Instant::now();
    loop {
        tokio::select! {
            _ = shared.stop.cancelled() => return,
            _ = rounds.tick() => {}
            _ = shared.new_lease.notified() => {
                tokio::time::sleep(floor.saturating_sub(round.elapsed())).await;
            }
        }
        round = Instant::now();
        let now = round;
        let leases: Vec<(String, String)> = shared
            .leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, l)| l.renew_until.is_none_or(|until| now < until))
            .map(|(id, l)| (id.clone(), l.member.clone()))
            .collect();
        if leases.is_empty() {
            renewed = now;
            continue;
        }
        match queues[using].renew(&leases).await {
            Ok((lost, cancelled)) => {
                let lag = renewed.elapsed().saturating_sub(every);
                renewed = Instant::now();
                metrics::histogram!("nightshift_lease_renewal_lag_seconds").record(lag.as_secs_f64());
                if lag > every {
                    tracing::warn!(lag_ms = lag.as_millis() as u64, "lease renewal ran late");
                }
                let registry = shared.leases.lock().unwrap_or_else(|e| e.into_inner());
                for id in lost.iter().chain(&cancelled) {
                    let Some(lease) = registry.get(id) else { continue };
                    let is_lost = lost.contains(id);
                    // An outcome already on its way wins: its lease is gone because it landed.
                    let stops = if is_lost {
                        lease
                            .stage
                            .compare_exchange(RunStage::RUNNING, RunStage::LOST, AcqRel, Acquire)
                            .is_ok()
                    } else {
                        lease.stage.load(Acquire) == RunStage::RUNNING
                    };
                    if stops {
                        tracing::info!(job.id = %id, lost = is_lost, "stopping job: cancelled or lease lost");
                        lease.abort.abort();
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "lease renewal failed; trying again on the other connection");
                using = 1 - using;
                rounds.reset_after(RETRY);
            }
        }
    }
}

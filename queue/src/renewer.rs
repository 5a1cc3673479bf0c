//! Lease renewal on a thread of its own. A handler that blocks a runtime thread (a CPU-bound
//! loop, a synchronous call) must not cost the jobs of its process their leases: renewing on
//! the worker's runtime would wait behind it, the leases would lapse and a live job would run
//! twice. So each process renews from one dedicated OS thread, with a small runtime and a Redis
//! connection of its own; the handlers keep their runtime. A blocked handler still cannot
//! hold its lease for ever: renewal stops at the job's timeout (the runtime would have cut it
//! there, had it been free), the lease lapses and the reaper gives the job another attempt.
//!
//! Renewal lag (how late a round came against its period) is exported as
//! `nightshift_lease_renewal_lag_seconds` and logged past a third of the lease.
use std::{
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use tokio::sync::mpsc;

use crate::{Queue, backend::Shared, conn::connect_redis};

struct Registration {
    shared: Arc<Shared>,
    redis_url: String,
}

/// Renews `shared`'s leases from the process's renewal thread until its backend stops.
pub(crate) fn register(shared: Arc<Shared>, redis_url: &str) {
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

async fn renew_loop(shared: Arc<Shared>, redis_url: String) {
    let config = shared.queue.config().clone();
    let every = config.lease / 3;
    // A connection made on this thread's runtime, so its I/O never waits for the workers'.
    let queue = loop {
        match connect_redis(&redis_url).await {
            Ok(conn) => break Queue::with_connection(conn, shared.queue.name(), config.clone()),
            Err(e) => {
                tracing::warn!(error = %e, "lease renewal cannot reach Redis; retrying");
                tokio::select! {
                    _ = shared.stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let mut last = Instant::now();
    loop {
        tokio::select! {
            _ = shared.stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let lag = last.elapsed().saturating_sub(every);
        last = Instant::now();
        metrics::histogram!("nightshift_lease_renewal_lag_seconds").record(lag.as_secs_f64());
        if lag > every {
            tracing::warn!(lag_ms = lag.as_millis() as u64, "lease renewal ran late");
        }
        let now = Instant::now();
        let leases: Vec<(String, String)> = shared
            .leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, l)| l.renew_until.is_none_or(|until| now < until))
            .map(|(id, l)| (id.clone(), l.member.clone()))
            .collect();
        if leases.is_empty() {
            continue;
        }
        match queue.renew(&leases).await {
            Ok((lost, cancelled)) => {
                let registry = shared.leases.lock().unwrap_or_else(|e| e.into_inner());
                for id in lost.iter().chain(&cancelled) {
                    if let Some(lease) = registry.get(id) {
                        tracing::info!(job.id = %id, lost = lost.contains(id), "stopping job: cancelled or lease lost");
                        lease.abort.abort();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "lease renewal failed"),
        }
    }
}

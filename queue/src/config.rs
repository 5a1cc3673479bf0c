use std::time::Duration;

/// Tunables of the queue. Defaults suit production; tests shorten the lease and sweeps.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Key prefix, so several deployments (or test runs) can share one Redis.
    pub prefix: String,
    /// How long a leased job is owned without renewal before the reaper may take it back.
    pub lease: Duration,
    /// How often each process tries to reap expired leases (one process wins a short lock).
    pub reap_interval: Duration,
    /// How often a worker process writes its heartbeat.
    pub heartbeat_interval: Duration,
    /// How long finished jobs' keys live in Redis; PostgreSQL keeps the history after that.
    pub finished_ttl: Duration,
    /// How long an idempotency key maps to its job.
    pub idempotency_ttl: Duration,
    /// Most jobs leased in one round trip.
    pub fetch_batch: usize,
    /// Most due jobs promoted, and most expired leases reaped, per call: bounded work per call.
    pub sweep_batch: usize,
    /// Fallback poll when no wake-up arrives (lost pub/sub message, Redis restart).
    pub idle_poll: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            prefix: "nightshift".into(),
            lease: Duration::from_secs(30),
            reap_interval: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(5),
            finished_ttl: Duration::from_secs(24 * 3600),
            idempotency_ttl: Duration::from_secs(24 * 3600),
            fetch_batch: 256,
            sweep_batch: 1000,
            idle_poll: Duration::from_secs(1),
        }
    }
}

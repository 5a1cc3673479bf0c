use std::{collections::BTreeMap, time::Duration};

use crate::Rate;

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
    /// Rates an operator set in place of a kind's declared one, by kind name (the e-mail rate
    /// per recipient domain): every queue handle built from this configuration applies them.
    pub rates: BTreeMap<String, Rate>,
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
            rates: BTreeMap::new(),
        }
    }
}

impl QueueConfig {
    /// The same settings with every loop bound and interval usable: a zero fetch batch would
    /// spin the worker, a zero sweep batch would never promote a delayed job, a zero interval
    /// would hammer Redis. Applied wherever a queue is built, so no caller can get it wrong.
    pub(crate) fn normalized(mut self) -> Self {
        let at_least = |d: Duration, min: Duration| d.max(min);
        self.fetch_batch = self.fetch_batch.max(1);
        self.sweep_batch = self.sweep_batch.max(1);
        self.lease = at_least(self.lease, Duration::from_millis(100));
        self.reap_interval = at_least(self.reap_interval, Duration::from_millis(10));
        self.heartbeat_interval = at_least(self.heartbeat_interval, Duration::from_millis(100));
        self.idle_poll = at_least(self.idle_poll, Duration::from_millis(10));
        self.finished_ttl = at_least(self.finished_ttl, Duration::from_secs(1));
        self.idempotency_ttl = at_least(self.idempotency_ttl, Duration::from_secs(1));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_batches_and_intervals_are_raised_to_usable_minimums() {
        let c = QueueConfig {
            fetch_batch: 0,
            sweep_batch: 0,
            reap_interval: Duration::ZERO,
            idle_poll: Duration::ZERO,
            ..QueueConfig::default()
        }
        .normalized();
        assert_eq!((c.fetch_batch, c.sweep_batch), (1, 1));
        assert!(!c.reap_interval.is_zero() && !c.idle_poll.is_zero());
        let d = QueueConfig::default();
        assert_eq!(
            d.clone().normalized().fetch_batch,
            d.fetch_batch,
            "sane settings are kept"
        );
    }
}

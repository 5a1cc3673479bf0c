use crate::job::DEFAULT_PRIORITY;

/// Redis key names for one queue. Every key carries the queue name as its hash tag, so a whole
/// queue lives in one Redis Cluster slot and every script touches a single slot.
#[derive(Debug, Clone)]
pub struct Keys {
    pub base: String,
    pub ready: String,
    pub scheduled: String,
    pub retry: String,
    pub inflight: String,
    pub dead: String,
    pub done: String,
    pub stats: String,
    pub paused: String,
    pub reaper: String,
    pub wake: String,
}

impl Keys {
    pub fn new(prefix: &str, queue: &str) -> Self {
        let base = format!("{prefix}:{{{queue}}}");
        Keys {
            ready: format!("{base}:ready"),
            scheduled: format!("{base}:scheduled"),
            retry: format!("{base}:retry"),
            inflight: format!("{base}:inflight"),
            dead: format!("{base}:dead"),
            done: format!("{base}:done"),
            stats: format!("{base}:stats"),
            paused: format!("{base}:paused"),
            reaper: format!("{base}:reaper"),
            wake: format!("{base}:wake"),
            base,
        }
    }

    pub fn job(&self, id: &str) -> String {
        format!("{}:job:{id}", self.base)
    }

    /// The concurrency keys that hold slots or have waiters (for the dashboard).
    pub fn concurrency_keys(&self) -> String {
        format!("{}:ckeys", self.base)
    }

    /// The ids holding a concurrency key's slots.
    pub fn concurrency_slots(&self, key: &str) -> String {
        format!("{}:ck:{key}", self.base)
    }

    /// The jobs waiting for one of a concurrency key's slots.
    pub fn concurrency_waiting(&self, key: &str) -> String {
        format!("{}:ckw:{key}", self.base)
    }

    /// The groups with queued jobs.
    pub fn groups(&self) -> String {
        format!("{}:gset", self.base)
    }

    /// A group's queued jobs.
    pub fn group(&self, group: &str) -> String {
        format!("{}:g:{group}", self.base)
    }

    /// Batch jobs' final states, for the batch pump (`batch_events.rs`).
    pub fn batch_events(&self) -> String {
        format!("{}:batchdone", self.base)
    }

    /// The batch pump's lock.
    pub fn batch_pump(&self) -> String {
        format!("{}:batchpump", self.base)
    }

    /// The ready list of a priority: the default's is `ready`, each other has its own.
    pub fn ready_at(&self, priority: u8) -> String {
        if priority == DEFAULT_PRIORITY {
            self.ready.clone()
        } else {
            format!("{}:ready:{priority}", self.base)
        }
    }
}

/// Process-wide keys (not per queue): the worker registry and the list of known queues.
pub fn workers_key(prefix: &str) -> String {
    format!("{prefix}:workers")
}

pub fn worker_key(prefix: &str, id: &str) -> String {
    format!("{prefix}:worker:{id}")
}

pub fn queues_key(prefix: &str) -> String {
    format!("{prefix}:queues")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_key_shares_one_hash_tag() {
        let k = Keys::new("ns", "emails");
        for key in [
            &k.ready,
            &k.scheduled,
            &k.retry,
            &k.inflight,
            &k.dead,
            &k.stats,
            &k.paused,
            &k.reaper,
            &k.concurrency_keys(),
            &k.concurrency_slots("u1"),
            &k.concurrency_waiting("u1"),
            &k.groups(),
            &k.group("g1"),
            &k.batch_events(),
            &k.batch_pump(),
        ] {
            assert!(key.starts_with("ns:{emails}:"), "{key}");
        }
        assert_eq!(k.job("abc"), "ns:{emails}:job:abc");
    }
}

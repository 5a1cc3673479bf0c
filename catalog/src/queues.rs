//! The typed enqueue facade: one handle per queue of the catalog, and `push` for a job of a
//! catalog kind, which goes to the queue its policy names.
use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use nightshift_queue::{NewJob, Queue, QueueConfig, QueueError, Rate, RedisConn};

use crate::{Kind, KindSpec, Typed};

/// Handles to every queue of the catalog, for enqueuing.
#[derive(Clone, Debug)]
pub struct Queues {
    by_name: Arc<BTreeMap<&'static str, Queue>>,
    /// Rates the configuration sets in place of a kind's declared one (`QueueConfig::rates`).
    rates: Arc<HashMap<String, Rate>>,
}

impl Queues {
    /// Every queue of the catalog, with the configuration's rates applied to the jobs pushed
    /// through them.
    pub fn new(conn: RedisConn, config: &QueueConfig) -> Self {
        let by_name = crate::queue_names()
            .into_iter()
            .map(|name| (name, Queue::with_connection(conn.clone(), name, config.clone())))
            .collect();
        Queues {
            by_name: Arc::new(by_name),
            rates: Arc::new(config.rates.clone().into_iter().collect()),
        }
    }

    fn configured(&self, mut job: NewJob) -> NewJob {
        if let (Some(r), Some(rate)) = (&mut job.rate, self.rates.get(job.kind.as_str())) {
            r.rate = *rate;
        }
        job
    }

    /// Pushes a job of a catalog kind; returns its id (the first job's, for a reused
    /// idempotency key). This is the internal producers' push (scheduler ticks, a handler's
    /// follow-up jobs, operator commands): there is no caller to record, so nothing is written
    /// to the history here; the job is on record from its first state change, which the worker's
    /// history writer upserts. A client's enqueue is the API's (`api/src/routes/enqueue/`): it
    /// checks the caller, records the job under the caller's name and opens the publish span
    /// before it answers.
    pub async fn push<K: Kind>(&self, job: Typed<K>) -> Result<String, QueueError> {
        self.of::<K>().push(self.configured(job.job)).await
    }

    /// Pushes many jobs of one kind in one round trip; ids in order.
    pub async fn push_bulk<K: Kind>(
        &self,
        jobs: impl IntoIterator<Item = Typed<K>>,
    ) -> Result<Vec<String>, QueueError> {
        let jobs: Vec<_> = jobs.into_iter().map(|t| self.configured(t.job)).collect();
        self.of::<K>().push_bulk(&jobs).await
    }

    /// The queue a kind's jobs go to.
    pub fn of<K: Kind>(&self) -> &Queue {
        self.for_spec(&KindSpec::of::<K>())
    }

    /// The queue of a kind known by its catalog entry.
    pub fn for_spec(&self, spec: &KindSpec) -> &Queue {
        // Built from the same catalog as every KindSpec, so the queue is always there.
        &self.by_name[spec.policy.queue]
    }

    pub fn get(&self, name: &str) -> Option<&Queue> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Queue> {
        self.by_name.values()
    }

    /// Registers every queue in Redis so operators see even the empty ones.
    pub async fn register_all(&self) -> Result<(), QueueError> {
        for q in self.iter() {
            q.register().await?;
        }
        Ok(())
    }
}

/// Publishes jobs per state of every queue as gauges, for dashboards and autoscalers. Every
/// process that runs it exports the same figures; a scraper may take any one.
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

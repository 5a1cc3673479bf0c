//! The queue handle and the producer side: push. Cheap to clone; every clone shares one
//! multiplexed connection. The worker-side protocol is in `protocol`, the operator operations
//! in `operator`.
use std::sync::Arc;

use crate::conn::{RedisConn, connect_redis};

use crate::{
    QueueConfig, QueueError,
    job::{FLOW_SEP, LOWEST_PRIORITY, NewJob, Pushed},
    keys::Keys,
    scripts::SCRIPTS,
};

/// Largest number of jobs sent in one script call; keeps each call's latency for other clients low.
const PUSH_CHUNK: usize = 1000;

// Crate-visible fields: the worker protocol and the operator operations are `impl Queue`
// blocks in their own modules.
#[derive(Clone)]
pub struct Queue {
    pub(crate) conn: RedisConn,
    pub(crate) name: Arc<str>,
    pub(crate) keys: Arc<Keys>,
    pub(crate) config: Arc<QueueConfig>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("name", &self.name).finish()
    }
}

impl Queue {
    /// Connects with reconnection and timeouts: a Redis that stops answering must surface as
    /// an error within seconds, not hang a request or a worker.
    pub async fn connect(redis_url: &str, name: &str, config: QueueConfig) -> Result<Self, QueueError> {
        let conn = connect_redis(redis_url).await?;
        Ok(Self::with_connection(conn, name, config))
    }

    pub fn with_connection(conn: RedisConn, name: &str, config: QueueConfig) -> Self {
        Queue {
            keys: Arc::new(Keys::new(&config.prefix, name)),
            name: name.into(),
            config: Arc::new(config.normalized()),
            conn,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn name_arc(&self) -> Arc<str> {
        self.name.clone()
    }

    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// The Redis key of a job's record.
    pub fn job_key(&self, id: &str) -> String {
        self.keys.job(id)
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn connection(&self) -> RedisConn {
        self.conn.clone()
    }

    /// Pushes one job and returns its id (the earlier job's id if the idempotency key was seen,
    /// or if an earlier job under its dedupe key absorbed it).
    pub async fn push(&self, job: NewJob) -> Result<String, QueueError> {
        Ok(self.push_one(job).await?.id)
    }

    /// [`Queue::push`], saying whether a dedupe key absorbed the job.
    pub async fn push_one(&self, job: NewJob) -> Result<Pushed, QueueError> {
        let mut pushed = self.push_chunk(std::slice::from_ref(&job)).await?;
        pushed
            .pop()
            .ok_or_else(|| QueueError::Protocol("push returned no id".into()))
    }

    /// Pushes many jobs, a thousand per round trip, and returns their ids in order.
    pub async fn push_bulk(&self, jobs: &[NewJob]) -> Result<Vec<String>, QueueError> {
        Ok(self.push_many(jobs).await?.into_iter().map(|p| p.id).collect())
    }

    /// [`Queue::push_bulk`], saying for each job whether a dedupe key absorbed it.
    pub async fn push_many(&self, jobs: &[NewJob]) -> Result<Vec<Pushed>, QueueError> {
        let mut pushed = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(PUSH_CHUNK) {
            pushed.extend(self.push_chunk(chunk).await?);
        }
        Ok(pushed)
    }

    async fn push_chunk(&self, jobs: &[NewJob]) -> Result<Vec<Pushed>, QueueError> {
        let k = &self.keys;
        let mut inv = SCRIPTS.push.prepare_invoke();
        inv.key(&k.ready)
            .key(&k.scheduled)
            .arg(&k.base)
            .arg(self.config.idempotency_ttl.as_secs().max(1))
            .arg(&k.wake)
            .arg(jobs.len());
        for j in jobs {
            // A duration: the script makes it a due time by Redis's clock, never ours.
            let delay_ms = j.delay.map_or(0, |d| d.as_millis() as u64);
            inv.arg(&j.id)
                .arg(j.idempotency_key.as_deref().unwrap_or(""))
                .arg(&j.kind)
                .arg(&j.payload)
                .arg(j.max_attempts.max(1))
                .arg(delay_ms)
                .arg(j.timeout.map_or(0, |t| t.as_millis() as u64));
            inv.arg(flow_field(j));
        }
        let ids: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await?;
        if ids.len() != jobs.len() {
            return Err(QueueError::Protocol(format!(
                "push returned {} ids for {} jobs",
                ids.len(),
                jobs.len()
            )));
        }
        Ok(ids
            .into_iter()
            .map(|id| match id.strip_prefix('~') {
                Some(earlier) => Pushed {
                    id: earlier.to_string(),
                    deduplicated: true,
                },
                None => Pushed {
                    id,
                    deduplicated: false,
                },
            })
            .collect())
    }
}

/// The flow options of a job in one field (see push.lua), empty for the defaults: most jobs
/// carry none and the script then parses nothing.
fn flow_field(j: &NewJob) -> String {
    if !j.has_flow() {
        return String::new();
    }
    let (dmode, dwindow, dkey) = match &j.dedupe {
        Some(d) => (d.mode.as_str(), d.window.as_millis().to_string(), d.key.as_str()),
        None => ("", String::new(), ""),
    };
    let (ckey, climit) = match &j.concurrency {
        Some(c) => (c.key.as_str(), c.limit.max(1).to_string()),
        None => ("", String::new()),
    };
    let (rkey, rint, rburst) = match &j.rate {
        Some(r) => (
            r.key.as_str(),
            r.rate.interval_us().to_string(),
            r.rate.burst.max(1).to_string(),
        ),
        None => ("", String::new(), String::new()),
    };
    let prio = j.priority.min(LOWEST_PRIORITY).to_string();
    let group = j.group.as_deref().unwrap_or("");
    let batch = j.batch.as_deref().unwrap_or("");
    let tp = j.trace_parent.as_deref().unwrap_or("");
    [
        prio.as_str(),
        dmode,
        &dwindow,
        dkey,
        ckey,
        &climit,
        group,
        rkey,
        &rint,
        &rburst,
        batch,
        tp,
    ]
    .join(&FLOW_SEP.to_string())
}

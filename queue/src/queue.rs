//! The queue handle: push, the worker-side protocol (fetch, ack, renew, reap, release) and the
//! operator operations. Cheap to clone; every clone shares one multiplexed connection.
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use redis::AsyncCommands;

use crate::conn::{RedisConn, connect_redis};

use crate::{
    QueueConfig, QueueError,
    job::{Job, JobRecord, JobState, NewJob, Outcome},
    keys::{self, Keys},
    scripts::SCRIPTS,
};

/// Largest number of jobs sent in one script call; keeps each call's latency for other clients low.
const PUSH_CHUNK: usize = 1000;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Clone)]
pub struct Queue {
    conn: RedisConn,
    name: Arc<str>,
    keys: Arc<Keys>,
    config: Arc<QueueConfig>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("name", &self.name).finish()
    }
}

/// Jobs per state in one queue. Succeeded and cancelled are running totals: their jobs expire
/// from Redis, and PostgreSQL keeps them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counts {
    pub scheduled: u64,
    pub queued: u64,
    pub running: u64,
    pub retrying: u64,
    pub dead: u64,
    pub succeeded_total: u64,
    pub cancelled_total: u64,
    pub retried_total: u64,
    pub paused: bool,
}

/// The result of one fetch: leased jobs, and when the earliest scheduled job falls due.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    pub jobs: Vec<Job>,
    pub next_due_ms: Option<i64>,
}

/// An outcome ready to be written, with its lease.
#[derive(Debug)]
pub(crate) struct Ack<'a> {
    pub job: &'a Job,
    pub outcome: &'a Outcome,
    pub retry_delay: Duration,
}

/// One job taken back by the reaper.
#[derive(Debug, Clone)]
pub(crate) struct Reaped {
    pub id: String,
    pub state: JobState,
    pub attempts: u32,
    pub kind: String,
    pub worker: String,
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

    /// Pushes one job and returns its id (the earlier job's id if the idempotency key was seen).
    pub async fn push(&self, job: NewJob) -> Result<String, QueueError> {
        let mut ids = self.push_chunk(std::slice::from_ref(&job)).await?;
        ids.pop()
            .ok_or_else(|| QueueError::Protocol("push returned no id".into()))
    }

    /// Pushes many jobs, a thousand per round trip, and returns their ids in order.
    pub async fn push_bulk(&self, jobs: &[NewJob]) -> Result<Vec<String>, QueueError> {
        let mut ids = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(PUSH_CHUNK) {
            ids.extend(self.push_chunk(chunk).await?);
        }
        Ok(ids)
    }

    async fn push_chunk(&self, jobs: &[NewJob]) -> Result<Vec<String>, QueueError> {
        let now = now_ms();
        let k = &self.keys;
        let mut inv = SCRIPTS.push.prepare_invoke();
        inv.key(&k.ready)
            .key(&k.scheduled)
            .arg(&k.base)
            .arg(now)
            .arg(self.config.idempotency_ttl.as_secs().max(1))
            .arg(&k.wake)
            .arg(jobs.len());
        for j in jobs {
            let run_at = j
                .delay
                .filter(|d| !d.is_zero())
                .map_or(0, |d| now + d.as_millis() as i64);
            inv.arg(&j.id)
                .arg(j.idempotency_key.as_deref().unwrap_or(""))
                .arg(&j.kind)
                .arg(&j.payload)
                .arg(j.max_attempts.max(1))
                .arg(run_at)
                .arg(j.timeout.map_or(0, |t| t.as_millis() as u64));
        }
        let ids: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await?;
        if ids.len() != jobs.len() {
            return Err(QueueError::Protocol(format!(
                "push returned {} ids for {} jobs",
                ids.len(),
                jobs.len()
            )));
        }
        Ok(ids)
    }

    pub(crate) async fn fetch(&self, count: usize, worker: &str) -> Result<Fetched, QueueError> {
        let now = now_ms();
        let k = &self.keys;
        let reply: Vec<String> = SCRIPTS
            .fetch
            .key(&k.ready)
            .key(&k.scheduled)
            .key(&k.retry)
            .key(&k.inflight)
            .key(&k.paused)
            .arg(&k.base)
            .arg(now)
            .arg(self.config.lease.as_millis() as u64)
            .arg(count)
            .arg(worker)
            .arg(self.config.sweep_batch)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let mut it = reply.into_iter();
        let head = it
            .next()
            .ok_or_else(|| QueueError::Protocol("empty fetch reply".into()))?;
        let next_due_ms = head.parse::<i64>().ok().filter(|v| *v >= 0);
        let rest: Vec<String> = it.collect();
        if rest.len() % 7 != 0 {
            return Err(QueueError::Protocol("fetch reply not in 7-field records".into()));
        }
        let mut jobs = Vec::with_capacity(rest.len() / 7);
        let mut fields = rest.into_iter();
        while let Some(id) = fields.next() {
            let mut next = || fields.next().unwrap_or_default();
            let (kind, payload, attempt, max, created, timeout) = (next(), next(), next(), next(), next(), next());
            let timeout_ms: u64 = timeout.parse().unwrap_or(0);
            let lease = format!("{id}|{worker}#{attempt}");
            jobs.push(Job {
                id,
                queue: self.name.clone(),
                kind,
                payload: payload.into(),
                attempt: attempt.parse().unwrap_or(1),
                max_attempts: max.parse().unwrap_or(1),
                created_at_ms: created.parse().unwrap_or(now),
                started_at_ms: now,
                timeout: (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms)),
                lease,
            });
        }
        Ok(Fetched { jobs, next_due_ms })
    }

    /// Writes outcomes in one call. Returns the resulting state per job; `None` marks an ack
    /// refused because the lease had already been taken back.
    pub(crate) async fn ack(&self, acks: &[Ack<'_>]) -> Result<Vec<Option<JobState>>, QueueError> {
        let k = &self.keys;
        let mut inv = SCRIPTS.ack.prepare_invoke();
        inv.key(&k.ready)
            .key(&k.scheduled)
            .key(&k.retry)
            .key(&k.inflight)
            .key(&k.dead)
            .key(&k.stats)
            .key(&k.done)
            .arg(&k.base)
            .arg(now_ms())
            .arg(acks.len());
        for a in acks {
            let (code, text) = match a.outcome {
                Outcome::Succeeded(r) => ("s", r.as_deref().unwrap_or("")),
                Outcome::Retry { error, .. } => ("r", error.as_str()),
                Outcome::Dead(e) => ("d", e.as_str()),
                Outcome::Cancelled(e) => ("c", e.as_str()),
                Outcome::Snooze { reason, .. } => ("z", reason.as_str()),
            };
            inv.arg(&a.job.id)
                .arg(&a.job.lease)
                .arg(code)
                .arg(text)
                .arg(a.retry_delay.as_millis() as u64);
        }
        let states: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await?;
        Ok(states.iter().map(|s| s.parse().ok()).collect())
    }

    /// Extends the leases of running jobs; returns (lost, cancel-requested) ids.
    pub(crate) async fn renew(&self, leases: &[(String, String)]) -> Result<(Vec<String>, Vec<String>), QueueError> {
        let mut inv = SCRIPTS.renew.prepare_invoke();
        inv.key(&self.keys.inflight)
            .arg(&self.keys.base)
            .arg(now_ms())
            .arg(self.config.lease.as_millis() as u64)
            .arg(leases.len());
        for (id, member) in leases {
            inv.arg(id).arg(member);
        }
        let reply: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await?;
        let mut parts = reply.split(|s| s.is_empty());
        let lost = parts.next().unwrap_or_default().to_vec();
        let cancelled = parts.next().unwrap_or_default().to_vec();
        Ok((lost, cancelled))
    }

    pub(crate) async fn reap(&self, owner: &str) -> Result<Vec<Reaped>, QueueError> {
        let k = &self.keys;
        let reply: Vec<String> = SCRIPTS
            .reap
            .key(&k.ready)
            .key(&k.inflight)
            .key(&k.dead)
            .key(&k.stats)
            .key(&k.reaper)
            .key(&k.done)
            .arg(&k.base)
            .arg(now_ms())
            .arg(self.config.sweep_batch)
            .arg((self.config.reap_interval.as_millis() as u64).max(100))
            .arg(owner)
            .arg(self.config.finished_ttl.as_millis() as u64)
            .arg(&k.wake)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(reply
            .chunks_exact(5)
            .filter_map(|c| {
                Some(Reaped {
                    id: c[0].clone(),
                    state: c[1].parse().ok()?,
                    attempts: c[2].parse().unwrap_or(0),
                    kind: c[3].clone(),
                    worker: c[4].clone(),
                })
            })
            .collect())
    }

    /// Gives leased jobs that never started back to the head of the queue.
    pub(crate) async fn release(&self, jobs: &[Job]) -> Result<u64, QueueError> {
        let mut inv = SCRIPTS.release.prepare_invoke();
        inv.key(&self.keys.ready)
            .key(&self.keys.inflight)
            .arg(&self.keys.base)
            .arg(&self.keys.wake);
        for job in jobs {
            inv.arg(&job.id).arg(&job.lease);
        }
        Ok(inv.invoke_async(&mut self.conn.clone()).await?)
    }

    // ---- operator operations ----

    pub async fn inspect(&self, id: &str) -> Result<Option<JobRecord>, QueueError> {
        let map: HashMap<String, String> = self.conn.clone().hgetall(self.keys.job(id)).await?;
        Ok(record_from_hash(id, &self.name, map))
    }

    pub async fn counts(&self) -> Result<Counts, QueueError> {
        let k = &self.keys;
        let (queued, scheduled, running, retrying, dead, stats, paused): (
            u64,
            u64,
            u64,
            u64,
            u64,
            HashMap<String, u64>,
            bool,
        ) = redis::pipe()
            .llen(&k.ready)
            .zcard(&k.scheduled)
            .zcard(&k.inflight)
            .zcard(&k.retry)
            .zcard(&k.dead)
            .hgetall(&k.stats)
            .exists(&k.paused)
            .query_async(&mut self.conn.clone())
            .await?;
        let stat = |n: &str| stats.get(n).copied().unwrap_or(0);
        Ok(Counts {
            scheduled,
            queued,
            running,
            retrying,
            dead,
            succeeded_total: stat("succeeded"),
            cancelled_total: stat("cancelled"),
            retried_total: stat("retried"),
            paused,
        })
    }

    /// Jobs in a state: newest first for the queue and the finished ones, soonest first for
    /// the sorted sets. Finished jobs are listed until the sweeper removes them after their TTL;
    /// PostgreSQL history has them after that.
    pub async fn list(&self, state: JobState, offset: usize, limit: usize) -> Result<Vec<JobRecord>, QueueError> {
        let k = &self.keys;
        // Saturating: an offset from a URL must not overflow, nor wrap into Redis's negative
        // (from the end) indexes.
        let start = isize::try_from(offset).unwrap_or(isize::MAX);
        let stop = start.saturating_add(isize::try_from(limit.max(1)).unwrap_or(isize::MAX) - 1);
        let mut conn = self.conn.clone();
        let ids: Vec<String> = match state {
            JobState::Queued => conn.lrange(&k.ready, start, stop).await?,
            JobState::Scheduled => conn.zrange(&k.scheduled, start, stop).await?,
            JobState::Retrying => conn.zrange(&k.retry, start, stop).await?,
            JobState::Running => {
                let members: Vec<String> = conn.zrange(&k.inflight, start, stop).await?;
                members
                    .into_iter()
                    .filter_map(|m| m.split('|').next().map(str::to_string))
                    .collect()
            }
            JobState::Dead => conn.zrevrange(&k.dead, start, stop).await?,
            JobState::Succeeded | JobState::Cancelled => conn.zrevrange(&k.done, start, stop).await?,
        };
        // An empty pipeline answers nil, not an empty list.
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(k.job(id));
        }
        let maps: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
        Ok(ids
            .iter()
            .zip(maps)
            .filter_map(|(id, m)| record_from_hash(id, &self.name, m))
            .filter(|r| r.state == state)
            .collect())
    }

    pub async fn retry(&self, id: &str) -> Result<JobState, QueueError> {
        self.admin("retry", id).await
    }

    /// Cancels a waiting job at once; a running job is asked to stop at its next lease renewal
    /// (the returned state is then still `running`).
    pub async fn cancel(&self, id: &str) -> Result<JobState, QueueError> {
        self.admin("cancel", id).await
    }

    /// Deletes a finished (dead, cancelled or succeeded) job from Redis.
    pub async fn discard(&self, id: &str) -> Result<(), QueueError> {
        self.admin("discard", id).await.map(|_| ())
    }

    async fn admin(&self, action: &'static str, id: &str) -> Result<JobState, QueueError> {
        let k = &self.keys;
        let reply: String = SCRIPTS
            .admin
            .key(&k.ready)
            .key(&k.scheduled)
            .key(&k.retry)
            .key(&k.dead)
            .key(&k.done)
            .arg(&k.base)
            .arg(action)
            .arg(id)
            .arg(now_ms())
            .arg(&k.wake)
            .invoke_async(&mut self.conn.clone())
            .await?;
        match reply.as_str() {
            "missing" => Err(QueueError::NotFound(id.to_string())),
            "discarded" => Ok(JobState::Cancelled),
            s if s.starts_with("invalid:") => Err(QueueError::InvalidTransition {
                id: id.to_string(),
                state: s["invalid:".len()..].to_string(),
                action,
            }),
            s => s
                .parse()
                .map_err(|_| QueueError::Protocol(format!("admin replied {s}"))),
        }
    }

    /// Paused queues lease nothing; running jobs finish.
    pub async fn pause(&self) -> Result<(), QueueError> {
        let _: () = self.conn.clone().set(&self.keys.paused, 1).await?;
        Ok(())
    }

    pub async fn resume(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: () = conn.del(&self.keys.paused).await?;
        let _: () = conn.publish(&self.keys.wake, 1).await?;
        Ok(())
    }

    /// Records this queue in the registry the dashboard lists.
    pub async fn register(&self) -> Result<(), QueueError> {
        let _: () = self
            .conn
            .clone()
            .sadd(keys::queues_key(&self.config.prefix), self.name.as_ref())
            .await?;
        Ok(())
    }
}

/// Names of the queues that have been registered.
pub async fn known_queues(conn: &mut RedisConn, prefix: &str) -> Result<Vec<String>, QueueError> {
    let mut names: Vec<String> = conn.smembers(keys::queues_key(prefix)).await?;
    names.sort();
    Ok(names)
}

/// Refuses a Redis that may evict keys: an evicted job hash or list is a silently lost job.
/// Warns about one without an append-only file: a crash then loses what was queued since the
/// last snapshot. On a cluster every master is asked (the reply is one INFO per node).
pub async fn check_redis_settings(conn: &mut RedisConn, allow_eviction: bool) -> Result<(), QueueError> {
    let reply: redis::Value = redis::cmd("INFO")
        .arg("memory")
        .arg("persistence")
        .query_async(conn)
        .await?;
    let infos: Vec<String> = match reply {
        redis::Value::Map(nodes) => nodes
            .into_iter()
            .map(|(_, info)| redis::from_redis_value(info))
            .collect::<Result<_, _>>()
            .map_err(redis::RedisError::from)?,
        one => vec![redis::from_redis_value(one).map_err(redis::RedisError::from)?],
    };
    let field = |info: &str, name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".into())
    };
    if infos.iter().any(|i| field(i, "aof_enabled") != "1") {
        tracing::warn!(
            "redis has no append-only file: a Redis crash loses what was queued since its last snapshot; \
             production needs appendonly yes and appendfsync everysec"
        );
    }
    match infos
        .iter()
        .map(|i| field(i, "maxmemory_policy"))
        .find(|p| p != "noeviction")
    {
        None => Ok(()),
        Some(policy) if allow_eviction => {
            tracing::warn!(%policy, "redis may evict keys; allowed by NIGHTSHIFT_ALLOW_EVICTION");
            Ok(())
        }
        Some(policy) => Err(QueueError::EvictionPolicy(policy)),
    }
}

fn record_from_hash(id: &str, queue: &str, mut m: HashMap<String, String>) -> Option<JobRecord> {
    let state = m.get("state")?.parse().ok()?;
    let num = |m: &HashMap<String, String>, k: &str| m.get(k).and_then(|v| v.parse::<i64>().ok());
    let mut text = |k: &str| m.remove(k).filter(|v| !v.is_empty());
    let (kind, payload, error, result, worker, idem) = (
        text("kind").unwrap_or_default(),
        text("payload").unwrap_or_default(),
        text("error"),
        text("result"),
        text("worker"),
        text("idem"),
    );
    Some(JobRecord {
        id: id.to_string(),
        queue: queue.to_string(),
        kind,
        payload,
        state,
        attempts: num(&m, "attempts").unwrap_or(0) as u32,
        max_attempts: num(&m, "max_attempts").unwrap_or(1) as u32,
        created_at_ms: num(&m, "created_at").unwrap_or(0),
        run_at_ms: num(&m, "run_at"),
        started_at_ms: num(&m, "started_at"),
        finished_at_ms: num(&m, "finished_at"),
        error,
        result,
        worker,
        idempotency_key: idem,
    })
}

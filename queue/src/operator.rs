//! Operator operations on a queue: inspect, count and list jobs; retry, cancel and discard
//! one; pause and resume the queue; register it for the dashboard.
use std::collections::HashMap;

use redis::AsyncCommands;

use crate::{
    Queue, QueueError,
    conn::RedisConn,
    job::{BatchEvent, Concurrency, DEFAULT_PRIORITY, JobRecord, JobState, LOWEST_PRIORITY, Progress},
    keys,
    scripts::SCRIPTS,
};

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

impl Queue {
    pub async fn inspect(&self, id: &str) -> Result<Option<JobRecord>, QueueError> {
        let map: HashMap<String, String> = self.conn.clone().hgetall(self.keys.job(id)).await?;
        Ok(record_from_hash(id, &self.name, map))
    }

    pub async fn counts(&self) -> Result<Counts, QueueError> {
        let k = &self.keys;
        // One round trip, not a MULTI: Redis refuses a transaction when it is over maxmemory,
        // which is when an operator needs the counts most. A job moving between two keys while
        // they are read may count twice or not at all: a snapshot, not a ledger.
        let mut pipe = redis::pipe();
        pipe.zcard(&k.scheduled)
            .zcard(&k.inflight)
            .zcard(&k.retry)
            .zcard(&k.dead)
            .hgetall(&k.stats)
            .exists(&k.paused);
        for p in 0..=LOWEST_PRIORITY {
            pipe.llen(k.ready_at(p));
        }
        let mut replies: std::collections::VecDeque<redis::Value> = pipe
            .query_async::<Vec<redis::Value>>(&mut self.conn.clone())
            .await?
            .into();
        let mut next = || replies.pop_front().unwrap_or(redis::Value::Nil);
        let num = |v: redis::Value| redis::from_redis_value::<u64>(v).map_err(redis::RedisError::from);
        let (scheduled, running, retrying, dead) = (num(next())?, num(next())?, num(next())?, num(next())?);
        let stats: HashMap<String, i64> = redis::from_redis_value(next()).map_err(redis::RedisError::from)?;
        let paused: bool = redis::from_redis_value(next()).map_err(redis::RedisError::from)?;
        let stat = |n: &str| stats.get(n).copied().unwrap_or(0).max(0) as u64;
        // Jobs in group lists and jobs waiting for a concurrency slot are queued too.
        let mut queued = stat("grouped") + stat("parked");
        for _ in 0..=LOWEST_PRIORITY {
            queued += num(next())?;
        }
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
            JobState::Queued => queued_page(&mut conn, k, offset, limit.max(1)).await?,
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

/// A concurrency key in use: jobs holding its slots, and jobs waiting for one.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyUse {
    pub key: String,
    pub running: u64,
    pub waiting: u64,
}

/// A group with queued jobs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupBacklog {
    pub group: String,
    pub queued: u64,
}

/// What flow control holds back in a queue, for operators: busy concurrency keys, groups with
/// a backlog, and jobs a rate key holds back (with their start). A sample of at most `limit`
/// of each, not a census: a queue may have a key per user.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FlowView {
    pub keys: Vec<KeyUse>,
    pub groups: Vec<GroupBacklog>,
    pub rate_delayed: Vec<JobRecord>,
}

impl Queue {
    pub async fn flow_view(&self, limit: usize) -> Result<FlowView, QueueError> {
        let k = &self.keys;
        let mut conn = self.conn.clone();
        let limit = limit.max(1);
        let keys = sample(&mut conn, &format!("{}:ckeys", k.base), limit).await?;
        let groups = sample(&mut conn, &format!("{}:gset", k.base), limit).await?;
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.scard(format!("{}:ck:{key}", k.base))
                .llen(format!("{}:ckw:{key}", k.base));
        }
        for g in &groups {
            pipe.llen(format!("{}:g:{g}", k.base));
        }
        let lens: Vec<u64> = if keys.is_empty() && groups.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut conn).await?
        };
        let mut view = FlowView::default();
        for (i, key) in keys.into_iter().enumerate() {
            view.keys.push(KeyUse {
                key,
                running: lens.get(2 * i).copied().unwrap_or(0),
                waiting: lens.get(2 * i + 1).copied().unwrap_or(0),
            });
        }
        let offset = 2 * view.keys.len();
        for (i, group) in groups.into_iter().enumerate() {
            view.groups.push(GroupBacklog {
                group,
                queued: lens.get(offset + i).copied().unwrap_or(0),
            });
        }
        view.keys
            .sort_by(|a, b| b.waiting.cmp(&a.waiting).then_with(|| a.key.cmp(&b.key)));
        view.groups
            .sort_by(|a, b| b.queued.cmp(&a.queued).then_with(|| a.group.cmp(&b.group)));
        // Rate-held jobs are scheduled at their reserved start, so they are among the soonest.
        view.rate_delayed = self
            .list(JobState::Scheduled, 0, limit * 4)
            .await?
            .into_iter()
            .filter(|j| j.rate_delayed)
            .take(limit)
            .collect();
        Ok(view)
    }

    /// Slots held by a job that is not running under a lease marked as holding one: each is a
    /// leak (a test asserts there are none once a queue is idle). Reads every key: for tests and
    /// diagnosis, not for a dashboard.
    pub async fn slot_leaks(&self) -> Result<Vec<String>, QueueError> {
        let k = &self.keys;
        let mut conn = self.conn.clone();
        let keys: Vec<String> = conn.smembers(format!("{}:ckeys", k.base)).await?;
        let leases: Vec<String> = conn.zrange(&k.inflight, 0, -1).await?;
        let holding: std::collections::HashSet<&str> = leases
            .iter()
            .filter(|m| m.ends_with('!'))
            .filter_map(|m| m.split('|').next())
            .collect();
        let mut leaks = Vec::new();
        for key in keys {
            let held: Vec<String> = conn.smembers(format!("{}:ck:{key}", k.base)).await?;
            for id in held {
                let state: Option<String> = conn.hget(k.job(&id), "state").await?;
                if state.as_deref() != Some("running") || !holding.contains(id.as_str()) {
                    leaks.push(format!("{key}: {id} ({})", state.as_deref().unwrap_or("gone")));
                }
            }
        }
        Ok(leaks)
    }
}

/// Trims the batch events a pump has recorded, only while it still holds the pump lock: a pump
/// that stalled past its lock leaves them for the one that took over (recording is
/// idempotent, trimming what another has not read is not).
const TRIM_BATCH_EVENTS: &str = r#"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('LTRIM', KEYS[1], tonumber(ARGV[2]), -1)
redis.call('DEL', KEYS[2])
return 1
"#;

/// Batch events read under the pump lock: `read` entries, of which `events` parsed.
#[derive(Debug, Default)]
pub struct BatchEvents {
    pub events: Vec<BatchEvent>,
    pub read: usize,
}

impl Queue {
    /// Takes the pump lock of this queue's batch events and reads up to `limit` of them, oldest
    /// first; `None` when another pump holds the lock. When some were read (`read > 0`), call
    /// [`Queue::batch_events_recorded`] once they are recorded.
    pub async fn batch_events(
        &self,
        owner: &str,
        limit: usize,
        lock: std::time::Duration,
    ) -> Result<Option<BatchEvents>, QueueError> {
        let mut conn = self.conn.clone();
        // Most ticks find nothing: one LLEN, no lock.
        let waiting: usize = conn.llen(self.batch_list()).await?;
        if waiting == 0 {
            return Ok(Some(BatchEvents::default()));
        }
        let took: Option<String> = redis::cmd("SET")
            .arg(self.batch_lock())
            .arg(owner)
            .arg("NX")
            .arg("PX")
            .arg(lock.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        if took.is_none() {
            return Ok(None);
        }
        let raw: Vec<String> = conn.lrange(self.batch_list(), 0, limit.max(1) as isize - 1).await?;
        // An entry that does not parse is trimmed with the rest: `read` counts what was read.
        let events = raw
            .iter()
            .filter_map(|e| {
                let mut parts = e.splitn(3, '|');
                let (batch, job, state) = (parts.next()?, parts.next()?, parts.next()?);
                Some(BatchEvent {
                    batch: batch.to_string(),
                    job: job.to_string(),
                    state: state.parse().ok()?,
                })
            })
            .collect();
        Ok(Some(BatchEvents {
            events,
            read: raw.len(),
        }))
    }

    /// Drops the `read` events just recorded and the pump lock, if `owner` still holds it.
    /// Returns false when the lock was lost: the events stay for the pump that took over.
    pub async fn batch_events_recorded(&self, owner: &str, read: usize) -> Result<bool, QueueError> {
        let trimmed: i64 = redis::Script::new(TRIM_BATCH_EVENTS)
            .key(self.batch_list())
            .key(self.batch_lock())
            .arg(owner)
            .arg(read)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(trimmed == 1)
    }

    fn batch_list(&self) -> String {
        format!("{}:batchdone", self.keys.base)
    }

    fn batch_lock(&self) -> String {
        format!("{}:batchpump", self.keys.base)
    }
}

/// Up to `limit` members of a set, in one SSCAN page or a few.
async fn sample(conn: &mut RedisConn, set: &str, limit: usize) -> Result<Vec<String>, QueueError> {
    let mut out = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg(set)
            .arg(cursor)
            .arg("COUNT")
            .arg(limit)
            .query_async(conn)
            .await?;
        out.extend(page);
        cursor = next;
        if cursor == 0 || out.len() >= limit {
            break;
        }
    }
    out.truncate(limit);
    Ok(out)
}

/// Names of the queues that have been registered.
pub async fn known_queues(conn: &mut RedisConn, prefix: &str) -> Result<Vec<String>, QueueError> {
    let mut names: Vec<String> = conn.smembers(keys::queues_key(prefix)).await?;
    names.sort();
    Ok(names)
}

/// `limit` queued ids from `offset`, across the ready lists in the order they are leased from:
/// priority 0's first, each list newest first.
async fn queued_page(
    conn: &mut RedisConn,
    k: &keys::Keys,
    mut offset: usize,
    mut limit: usize,
) -> Result<Vec<String>, QueueError> {
    let lists: Vec<String> = (0..=LOWEST_PRIORITY).map(|p| k.ready_at(p)).collect();
    let mut pipe = redis::pipe();
    for l in &lists {
        pipe.llen(l);
    }
    let lens: Vec<usize> = pipe.query_async(conn).await?;
    let mut ids = Vec::new();
    for (list, len) in lists.iter().zip(lens) {
        if limit == 0 {
            break;
        }
        if offset >= len {
            offset -= len;
            continue;
        }
        let stop = offset.saturating_add(limit).min(len) - 1;
        let got: Vec<String> = conn.lrange(list, offset as isize, stop as isize).await?;
        limit = limit.saturating_sub(got.len());
        offset = 0;
        ids.extend(got);
    }
    Ok(ids)
}

fn record_from_hash(id: &str, queue: &str, mut m: HashMap<String, String>) -> Option<JobRecord> {
    let state = m.get("state")?.parse().ok()?;
    let num = |m: &HashMap<String, String>, k: &str| m.get(k).and_then(|v| v.parse::<i64>().ok());
    let mut text = |k: &str| m.remove(k).filter(|v| !v.is_empty());
    let (kind, payload, error, result, worker, idem, dedupe, ckey, group, rate_key, batch, tp) = (
        text("kind").unwrap_or_default(),
        text("payload").unwrap_or_default(),
        text("error"),
        text("result"),
        text("worker"),
        text("idem"),
        text("dedupe"),
        text("ckey"),
        text("group"),
        text("rkey"),
        text("batch"),
        text("tp"),
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
        priority: num(&m, "prio").map_or(DEFAULT_PRIORITY, |p| p.clamp(0, LOWEST_PRIORITY as i64) as u8),
        dedupe_key: dedupe,
        progress: num(&m, "progress").map(|p| Progress {
            percent: p.clamp(0, 100) as u8,
            message: m.get("progress_msg").cloned().unwrap_or_default(),
            at_ms: num(&m, "progress_at").unwrap_or(0),
        }),
        concurrency: ckey.map(|key| Concurrency {
            key,
            limit: num(&m, "climit").unwrap_or(1).clamp(1, u32::MAX as i64) as u32,
        }),
        group,
        rate_key,
        rate_delayed: m.contains_key("rok"),
        batch,
        trace_parent: tp,
    })
}

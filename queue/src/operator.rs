//! Operator operations on a queue: inspect, count and list jobs; retry, cancel and discard
//! one; pause and resume the queue; register it for the dashboard.
use std::collections::HashMap;

use redis::AsyncCommands;

use crate::{
    Queue, QueueError,
    conn::RedisConn,
    job::{Concurrency, DEFAULT_PRIORITY, JobRecord, JobState, LOWEST_PRIORITY, Progress},
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

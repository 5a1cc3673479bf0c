use std::sync::Arc;

use rand::distr::{Alphanumeric, SampleString};
use redis::AsyncCommands;

use crate::conn::RedisConn;

use crate::{QueueError, clock::now_ms, keys};

/// A worker process's identity: host, pid and a random suffix, so a restarted process (same
/// host, maybe the same pid in a container) never collides with the leases of its predecessor.
#[derive(Debug, Clone)]
pub struct WorkerIdentity {
    pub id: Arc<str>,
    pub host: String,
    pub pid: u32,
    pub started_at_ms: i64,
}

impl WorkerIdentity {
    pub fn generate() -> Self {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let pid = std::process::id();
        let suffix = Alphanumeric.sample_string(&mut rand::rng(), 6).to_lowercase();
        WorkerIdentity {
            id: format!("{host}:{pid}:{suffix}").into(),
            host,
            pid,
            started_at_ms: now_ms(),
        }
    }
}

/// What the dashboard shows of a live worker.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkerInfo {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub queues: String,
    pub concurrency: u32,
    pub running: u32,
    pub started_at_ms: i64,
    pub last_heartbeat_ms: i64,
}

pub(crate) async fn heartbeat(
    conn: &mut RedisConn,
    prefix: &str,
    me: &WorkerIdentity,
    queue: &str,
    concurrency: usize,
    running: usize,
    ttl_secs: u64,
) -> Result<(), QueueError> {
    let key = keys::worker_key(prefix, &me.id);
    let now = now_ms();
    let _: () = redis::pipe()
        .hset_multiple(
            &key,
            &[
                ("host", me.host.clone()),
                ("pid", me.pid.to_string()),
                ("queues", queue.to_string()),
                ("concurrency", concurrency.to_string()),
                ("running", running.to_string()),
                ("started_at", me.started_at_ms.to_string()),
                ("last_heartbeat", now.to_string()),
            ],
        )
        .expire(&key, ttl_secs as i64)
        .zadd(keys::workers_key(prefix), me.id.as_ref(), now)
        .query_async(conn)
        .await?;
    Ok(())
}

pub(crate) async fn deregister(conn: &mut RedisConn, prefix: &str, me: &WorkerIdentity) -> Result<(), QueueError> {
    let _: () = redis::pipe()
        .del(keys::worker_key(prefix, &me.id))
        .zrem(keys::workers_key(prefix), me.id.as_ref())
        .query_async(conn)
        .await?;
    Ok(())
}

/// Workers whose heartbeat is fresher than `max_age_ms`; stale entries are pruned.
pub async fn list_workers(conn: &mut RedisConn, prefix: &str, max_age_ms: i64) -> Result<Vec<WorkerInfo>, QueueError> {
    let registry = keys::workers_key(prefix);
    let cutoff = now_ms() - max_age_ms;
    let _: () = conn.zrembyscore(&registry, "-inf", cutoff).await?;
    let ids: Vec<String> = conn.zrange(&registry, 0, -1).await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let m: std::collections::HashMap<String, String> = conn.hgetall(keys::worker_key(prefix, &id)).await?;
        let num = |k: &str| m.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        if m.is_empty() {
            continue;
        }
        out.push(WorkerInfo {
            host: m.get("host").cloned().unwrap_or_default(),
            pid: num("pid") as u32,
            queues: m.get("queues").cloned().unwrap_or_default(),
            concurrency: num("concurrency") as u32,
            running: num("running") as u32,
            started_at_ms: num("started_at"),
            last_heartbeat_ms: num("last_heartbeat"),
            id,
        });
    }
    Ok(out)
}

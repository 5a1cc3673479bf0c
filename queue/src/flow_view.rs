//! What flow control holds back in a queue, for operators and tests: busy concurrency keys,
//! groups with a backlog, jobs a rate key holds back, and concurrency slots leaked.
use redis::AsyncCommands;

use crate::{
    Queue, QueueError,
    conn::RedisConn,
    job::{JobRecord, JobState},
};

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
        let keys = sample(&mut conn, &k.concurrency_keys(), limit).await?;
        let groups = sample(&mut conn, &k.groups(), limit).await?;
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.scard(k.concurrency_slots(key)).llen(k.concurrency_waiting(key));
        }
        for g in &groups {
            pipe.llen(k.group(g));
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
        let keys: Vec<String> = conn.smembers(k.concurrency_keys()).await?;
        let leases: Vec<String> = conn.zrange(&k.inflight, 0, -1).await?;
        let holding: std::collections::HashSet<&str> = leases
            .iter()
            .filter(|m| m.ends_with('!'))
            .filter_map(|m| m.split('|').next())
            .collect();
        let mut leaks = Vec::new();
        for key in keys {
            let held: Vec<String> = conn.smembers(k.concurrency_slots(&key)).await?;
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

//! The Redis settings a queue depends on, checked at startup.
use crate::{QueueError, conn::RedisConn};

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

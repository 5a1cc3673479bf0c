//! One connection type for a single Redis and a Redis Cluster. Every key of a queue carries the
//! queue's hash tag and every script touches one queue, so the queue code does not care which it
//! talks to; pub/sub (wake-ups, key rotation) goes to one node, since a cluster forwards
//! PUBLISH to every node.
use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use redis::{
    Cmd, ErrorKind, Pipeline, RedisFuture, RedisResult, ServerErrorKind, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster_async::ClusterConnection,
};

use crate::QueueError;

#[derive(Clone)]
pub enum RedisConn {
    Single(Single),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => Box::pin(async move {
                let (generation, mut conn) = c.current();
                let result = conn.req_packed_command(cmd).await;
                if result.as_ref().map_or_else(read_only_error, read_only_value) {
                    c.replace(generation);
                }
                result
            }),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        p: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => Box::pin(async move {
                let (generation, mut conn) = c.current();
                let result = conn.req_packed_commands(p, offset, count).await;
                if result
                    .as_ref()
                    .map_or_else(read_only_error, |values| values.iter().any(read_only_value))
                {
                    c.replace(generation);
                }
                result
            }),
            RedisConn::Cluster(c) => c.req_packed_commands(p, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.current().1.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}

/// One Redis behind one address, reconnecting by itself after an outage and after a failover.
/// The redis crate's manager reconnects on I/O errors only; behind a proxy or a DNS name that
/// moved to a promoted replica, the old connection still reaches the demoted node, which
/// answers every write with `READONLY`. Such an answer replaces the connection, so the next
/// command reaches whichever node the address leads to now.
#[derive(Clone)]
pub struct Single(Arc<SingleInner>);

struct SingleInner {
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// The connection in use and its generation, so that the callers who saw the same
    /// `READONLY` replace it once.
    current: RwLock<(u64, ConnectionManager)>,
}

impl Single {
    async fn connect(client: redis::Client, config: ConnectionManagerConfig) -> RedisResult<Self> {
        let manager = client.get_connection_manager_with_config(config.clone()).await?;
        Ok(Single(Arc::new(SingleInner {
            client,
            config,
            current: RwLock::new((0, manager)),
        })))
    }

    fn current(&self) -> (u64, ConnectionManager) {
        let current = self.0.current.read().unwrap_or_else(|e| e.into_inner());
        (current.0, current.1.clone())
    }

    /// Replaces the connection of `generation`, unless another caller already did.
    fn replace(&self, generation: u64) {
        let mut current = self.0.current.write().unwrap_or_else(|e| e.into_inner());
        if current.0 != generation {
            return;
        }
        // Lazy: the new connection is made by the next command, which waits for it.
        match ConnectionManager::new_lazy_with_config(self.0.client.clone(), self.0.config.clone()) {
            Ok(manager) => {
                tracing::warn!("redis answered READONLY (a failover): reconnecting");
                metrics::counter!("nightshift_redis_failovers_seen_total").increment(1);
                *current = (generation + 1, manager);
            }
            Err(e) => tracing::warn!(error = %e, "redis answered READONLY and a new connection could not be made"),
        }
    }
}

/// The nodes named by REDIS_URL and whether they form a cluster: several comma-separated URLs,
/// or one with the `redis+cluster://` scheme, mean a cluster.
pub fn nodes(redis_url: &str) -> (Vec<String>, bool) {
    let nodes: Vec<String> = redis_url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| match u.strip_prefix("redis+cluster://") {
            Some(rest) => format!("redis://{rest}"),
            None => u.to_string(),
        })
        .collect();
    let cluster = nodes.len() > 1 || redis_url.trim_start().starts_with("redis+cluster://");
    (nodes, cluster)
}

/// The node pub/sub subscribes to.
pub fn pubsub_client(redis_url: &str) -> Result<redis::Client, QueueError> {
    let (nodes, _) = nodes(redis_url);
    Ok(redis::Client::open(
        nodes.first().map(String::as_str).unwrap_or(redis_url),
    )?)
}

/// Connects to a Redis or a Redis Cluster, reconnecting by itself after an outage.
pub async fn connect_redis(redis_url: &str) -> Result<RedisConn, QueueError> {
    let (connect, response) = (Duration::from_secs(2), Duration::from_secs(5));
    match nodes(redis_url) {
        (nodes, true) => {
            let client = redis::cluster::ClusterClientBuilder::new(nodes)
                .connection_timeout(connect)
                .response_timeout(response)
                .build()?;
            Ok(RedisConn::Cluster(client.get_async_connection().await?))
        }
        (nodes, false) => {
            let client = redis::Client::open(nodes.first().map(String::as_str).unwrap_or(redis_url))?;
            let cfg = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(connect))
                .set_response_timeout(Some(response))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_secs(1));
            Ok(RedisConn::Single(Single::connect(client, cfg).await?))
        }
    }
}

/// A `READONLY` answer: the node behind the address is a replica now. The connection returns
/// a server's error as a value; commands turn it into an error later.
fn read_only_value(value: &Value) -> bool {
    matches!(value, Value::ServerError(e) if e.kind() == Some(ServerErrorKind::ReadOnly))
}

fn read_only_error(error: &redis::RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_or_the_cluster_scheme_means_a_cluster() {
        assert_eq!(
            nodes("redis://127.0.0.1:6379"),
            (vec!["redis://127.0.0.1:6379".into()], false)
        );
        assert_eq!(
            nodes("redis://a:7000, redis://b:7001"),
            (vec!["redis://a:7000".into(), "redis://b:7001".into()], true)
        );
        assert_eq!(nodes("redis+cluster://a:7000"), (vec!["redis://a:7000".into()], true));
    }

    #[test]
    fn only_a_readonly_answer_means_the_node_was_demoted() {
        let answer = |wire: &[u8]| redis::parse_redis_value(wire).unwrap();
        assert!(read_only_value(&answer(
            b"-READONLY You can't write against a read only replica.\r\n"
        )));
        assert!(!read_only_value(&answer(b"-ERR unknown command\r\n")));
        assert!(!read_only_value(&answer(b"-LOADING Redis is loading the dataset\r\n")));
        assert!(!read_only_value(&answer(b"+OK\r\n")));
    }
}

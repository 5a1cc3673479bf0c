//! One connection type for a single Redis and a Redis Cluster. Every key of a queue carries the
//! queue's hash tag and every script touches one queue, so the queue code does not care which it
//! talks to; pub/sub (wake-ups, key rotation) goes to one node, since a cluster forwards
//! PUBLISH to every node.
use std::time::Duration;

use redis::{
    Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager},
    cluster_async::ClusterConnection,
};

use crate::QueueError;

#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
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
            RedisConn::Single(c) => c.req_packed_commands(p, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(p, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
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
            Ok(RedisConn::Single(client.get_connection_manager_with_config(cfg).await?))
        }
    }
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
}

use thiserror::Error;

/// Errors at the queue's boundary. Redis failures are kept apart from refusals so callers can
/// map "the queue is unreachable" to 503 and "you asked for something impossible" to 4xx.
#[derive(Debug, Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(
        "redis maxmemory-policy is `{0}`; the queue needs `noeviction` or Redis may silently drop jobs \
         (set NIGHTSHIFT_ALLOW_EVICTION=1 to run anyway in development)"
    )]
    EvictionPolicy(String),
    #[error("job {0} not found")]
    NotFound(String),
    #[error("job {id} is {state}; cannot {action} it")]
    InvalidTransition {
        id: String,
        state: String,
        action: &'static str,
    },
    #[error("unexpected reply from redis script: {0}")]
    Protocol(String),
}

impl QueueError {
    /// True when the failure is about reaching Redis, not about the request.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, QueueError::Redis(_))
    }
}

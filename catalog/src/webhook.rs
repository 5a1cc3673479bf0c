//! `webhook.send {delivery_key}`: the producer side of webhooks. A delivery is written to the
//! webhook outbox under its key, then the send job is pushed; the worker crate signs and POSTs
//! it. Endpoint secrets are made here because the API registers and rotates endpoints.
use std::time::Duration;

use nightshift_queue::{Backoff, Rate};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{Exposure, Kind, Policy, Queues, email::EnqueueError};

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// A new endpoint secret: 32 random bytes, hex.
pub fn new_secret() -> String {
    format!("whsec_{}", hex::encode(rand::random::<[u8; 32]>()))
}

pub struct SendWebhook;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendPayload {
    pub delivery_key: String,
}

impl Kind for SendWebhook {
    const NAME: &'static str = "webhook.send";
    const EXPOSURE: Exposure = Exposure::Internal;
    /// Deliveries per target host across every worker, so one receiver is not flooded.
    const RATE: Option<Rate> = Some(Rate::per_second(10, 20));
    const POLICY: Policy = Policy {
        queue: "webhooks",
        max_attempts: 12,
        timeout: Duration::from_secs(30),
        backoff: Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(1800),
        },
    };
    type Payload = SendPayload;
}

/// Stores a delivery under its key and pushes `webhook.send` for it (key as idempotency key),
/// in its user's group (one user's 10,000 deliveries do not delay another's one) and under
/// its target host's rate. Safe to call again: the row and the job are each made once.
pub async fn enqueue(
    db: &PgPool,
    queues: &Queues,
    key: &str,
    endpoint_id: i64,
    event: &str,
    data: &Value,
) -> Result<String, EnqueueError> {
    let body = json!({ "id": key, "event": event, "data": data }).to_string();
    let (user, url): (i64, String) = sqlx::query_as(
        "WITH stored AS (
            INSERT INTO webhook_outbox (delivery_key, endpoint_id, event, body) VALUES ($1, $2, $3, $4)
            ON CONFLICT (delivery_key) DO NOTHING
         )
         SELECT user_id, url FROM webhook_endpoints WHERE id = $2",
    )
    .bind(key)
    .bind(endpoint_id)
    .bind(event)
    .bind(&body)
    .fetch_one(db)
    .await?;
    let payload = SendPayload {
        delivery_key: key.to_string(),
    };
    Ok(queues
        .push(
            SendWebhook::job(&payload)
                .idempotency_key(format!("webhook:{key}"))
                .group(format!("user:{user}"))
                .rate_key(host_of(&url)),
        )
        .await?)
}

/// The host (and port) of an endpoint URL, lower-cased: what a receiver limits by.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    host.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    #[test]
    fn deliveries_are_rate_limited_by_their_target_host() {
        assert_eq!(super::host_of("https://Hooks.Example.com/a/b?c"), "hooks.example.com");
        assert_eq!(super::host_of("http://user:pw@127.0.0.1:8080/x"), "127.0.0.1:8080");
    }
}

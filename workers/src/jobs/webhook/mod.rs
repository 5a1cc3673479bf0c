//! `webhook.send {delivery_key}`: POSTs one row of the webhook outbox to its endpoint.
//!
//! Every request carries `Nightshift-Webhook-Id` (the delivery key: receivers dedupe on it, as
//! webhooks are at-least-once by nature) and `Nightshift-Signature: t=<unix secs>,v1=<hex>`,
//! the HMAC-SHA256 of `"<t>.<body>"` under the endpoint's secret. During a rotation's grace
//! window a second `v1=` is signed with the previous secret. A receiver recomputes the HMAC,
//! compares in constant time and refuses a `t` too far from its clock, so a captured request
//! cannot be replayed later ([`verify`] does all of it).
//!
//! 2xx is delivered; 5xx, 408, 429, timeouts and connection errors retry with backoff; any
//! other 4xx means the receiver refuses this delivery, and retrying cannot help: dead, after
//! that one request, whatever its body holds. Of a receiver's body only the first
//! [`BODY_PREFIX`] bytes are ever read (the receiver is anyone's URL: a gigabyte of error page
//! must cost a worker nothing), and kept as storable text.
//!
//! Endpoints are user-supplied URLs, so requests only go to public addresses (unless
//! NIGHTSHIFT_WEBHOOK_ALLOW_PRIVATE=1): a webhook must not reach the metadata service, the
//! database or anything else inside the network. Names are checked after resolution, by the
//! client's resolver, so a name that re-resolves to a private address later is refused too.

use nightshift_catalog::webhook::{SendPayload, SendWebhook};
use nightshift_common::text::storable_bytes;
use nightshift_queue::{Job, Outcome};
use serde_json::json;
use sqlx::PgPool;

use super::{Handler, JobEnv};

mod public;
mod signature;

use public::refused_by_resolver;
pub use public::{http_client, is_public, refused_literal};
pub use signature::{TOLERANCE, VerifyError, signature_header, verify};

/// Bytes of a non-2xx answer's body read for its error; the rest is never read.
pub const BODY_PREFIX: usize = 1024;
/// Characters of that body kept in the delivery's error.
const BODY_KEPT: usize = 200;

pub const ID_HEADER: &str = "Nightshift-Webhook-Id";
pub const SIGNATURE_HEADER: &str = "Nightshift-Signature";

type Delivery = (String, String, String, String, Option<String>);

impl Handler for SendWebhook {
    async fn run(env: &JobEnv, _job: &Job, p: SendPayload) -> Outcome {
        let row: Result<Option<Delivery>, _> = sqlx::query_as(
            "UPDATE webhook_outbox o SET attempts = attempts + 1
             FROM webhook_endpoints e
             WHERE o.delivery_key = $1 AND e.id = o.endpoint_id
             RETURNING o.state, o.body, e.url, e.secret,
                       CASE WHEN e.previous_expires_at > now() THEN e.previous_secret END",
        )
        .bind(&p.delivery_key)
        .fetch_optional(&env.db)
        .await;
        let (state, body, url, secret, previous) = match row {
            Err(e) => return Outcome::retry(format!("reading the delivery: {e}")),
            Ok(None) => {
                return Outcome::Dead(format!(
                    "no delivery `{}` (or its endpoint was deleted)",
                    p.delivery_key
                ));
            }
            Ok(Some(r)) => r,
        };
        match state.as_str() {
            "delivered" => return Outcome::Succeeded(Some(json!({ "already": "delivered" }).to_string())),
            "failed" => return Outcome::Dead("delivery already failed".into()),
            _ => {}
        }
        if !env.webhook_allow_private
            && let Some(refused) = refused_literal(&url)
        {
            return record(
                &env.db,
                &p.delivery_key,
                "failed",
                None,
                Some(format!("refused: {refused}")),
            )
            .await;
        }
        let mut secrets = vec![secret.as_str()];
        secrets.extend(previous.as_deref());
        let t = nightshift_queue::clock::now().timestamp();
        let sent = env
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ID_HEADER, &p.delivery_key)
            .header(SIGNATURE_HEADER, signature_header(&secrets, t, body.as_bytes()))
            .body(body)
            .send()
            .await;
        let (status, error) = match sent {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    return record(&env.db, &p.delivery_key, "delivered", Some(status.as_u16()), None).await;
                }
                let snippet = storable_bytes(&body_prefix(resp, BODY_PREFIX).await, BODY_KEPT);
                (Some(status), format!("receiver answered {status}: {snippet}"))
            }
            // A name that resolved only to private addresses will not become public by retrying.
            Err(e) if refused_by_resolver(&e) => {
                let refused = format!("refused: {url} resolves only to addresses that are not public");
                return record(&env.db, &p.delivery_key, "failed", None, Some(refused)).await;
            }
            Err(e) => (None, format!("request failed: {e}")),
        };
        let code = status.map(|s| s.as_u16());
        let permanent = status.is_some_and(|s| s.is_client_error() && s.as_u16() != 408 && s.as_u16() != 429);
        if permanent {
            return record(&env.db, &p.delivery_key, "failed", code, Some(error)).await;
        }
        let _ = sqlx::query("UPDATE webhook_outbox SET last_status = $2, last_error = $3 WHERE delivery_key = $1")
            .bind(&p.delivery_key)
            .bind(code.map(i32::from))
            .bind(&error)
            .execute(&env.db)
            .await;
        Outcome::retry(error)
    }
}

/// At most `limit` bytes of a response's body: dropping the response with the rest unread
/// closes its connection instead of draining it.
async fn body_prefix(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut prefix = Vec::new();
    while prefix.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => prefix.extend_from_slice(&chunk[..chunk.len().min(limit - prefix.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    prefix
}

async fn record(db: &PgPool, key: &str, state: &str, status: Option<u16>, error: Option<String>) -> Outcome {
    let res = sqlx::query(
        "UPDATE webhook_outbox SET state = $2, last_status = $3, last_error = $4,
                delivered_at = CASE WHEN $2 = 'delivered' THEN now() END
         WHERE delivery_key = $1",
    )
    .bind(key)
    .bind(state)
    .bind(status.map(i32::from))
    .bind(&error)
    .execute(db)
    .await;
    match (res, error) {
        (Err(e), _) => Outcome::retry(format!("recording the delivery: {e}")),
        (Ok(_), Some(error)) => Outcome::Dead(error),
        (Ok(_), None) => Outcome::Succeeded(Some(json!({ "status": status }).to_string())),
    }
}

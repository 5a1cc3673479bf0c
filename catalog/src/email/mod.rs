//! `email.send {message_key}`: the producer side of e-mail. A message is rendered once, when
//! it is queued ([`enqueue`]), and stored in the outbox under its message key with a
//! Message-ID; then the send job is pushed. The worker crate sends those stored bytes.
use std::time::Duration;

use lettre::message::Mailbox;
use nightshift_queue::Backoff;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;

use crate::{Exposure, Kind, Policy, Queues};

pub mod templates;

pub use templates::TemplateError;

/// The domain of a From address, for Message-IDs (`Bills <bills@example.com>` → example.com).
pub fn message_id_domain(from: &str) -> &str {
    from.rsplit('@')
        .next()
        .unwrap_or("nightshift")
        .trim_end_matches('>')
        .trim()
}

/// An e-mail to queue.
#[derive(Debug, Clone)]
pub struct NewEmail<'a> {
    /// The idempotency key: a second enqueue with the same key returns the first message.
    pub key: &'a str,
    pub template: &'a str,
    pub to: &'a str,
    pub vars: &'a Value,
}

#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("`{0}` is not an e-mail address")]
    Address(String),
    #[error("message key `{0}` was already used for another template or recipient")]
    KeyReused(String),
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] nightshift_queue::QueueError),
}

#[derive(Debug, Clone, Serialize)]
pub struct Queued {
    pub message_key: String,
    pub message_id: String,
    /// The send job; `None` once the message was sent or failed.
    pub job_id: Option<String>,
    /// False when the key was already queued: nothing new was written.
    pub created: bool,
}

/// Renders and stores the message under its key, then pushes `email.send` for it with the key
/// as idempotency key. Safe to call again after any failure: the row and the job are each
/// made once.
pub async fn enqueue(
    db: &PgPool,
    queues: &Queues,
    email: NewEmail<'_>,
    id_domain: &str,
) -> Result<Queued, EnqueueError> {
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|_| EnqueueError::Address(email.to.to_string()))?;
    let r = templates::render(email.template, email.vars)?;
    let message_id = format!("<{}@{}>", uuid::Uuid::now_v7(), id_domain);
    let created = sqlx::query(
        "INSERT INTO email_outbox (message_key, message_id, template, recipient, subject, text_body, html_body)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (message_key) DO NOTHING",
    )
    .bind(email.key)
    .bind(&message_id)
    .bind(email.template)
    .bind(to.to_string())
    .bind(&r.subject)
    .bind(&r.text)
    .bind(&r.html)
    .execute(db)
    .await?
    .rows_affected()
        == 1;
    let (message_id, template, recipient, state): (String, String, String, String) =
        sqlx::query_as("SELECT message_id, template, recipient, state FROM email_outbox WHERE message_key = $1")
            .bind(email.key)
            .fetch_one(db)
            .await?;
    if template != email.template || recipient != to.to_string() {
        return Err(EnqueueError::KeyReused(email.key.to_string()));
    }
    if state != "pending" {
        // Sent or failed for good: there is nothing left to push.
        return Ok(Queued {
            message_key: email.key.to_string(),
            message_id,
            job_id: None,
            created,
        });
    }
    let payload = SendPayload {
        message_key: email.key.to_string(),
    };
    let job_id = queues
        .push(SendEmail::job(&payload).idempotency_key(format!("email:{}", email.key)))
        .await?;
    Ok(Queued {
        message_key: email.key.to_string(),
        message_id,
        job_id: Some(job_id),
        created,
    })
}

pub struct SendEmail;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendPayload {
    pub message_key: String,
}

impl Kind for SendEmail {
    const NAME: &'static str = "email.send";
    const EXPOSURE: Exposure = Exposure::Internal;
    const POLICY: Policy = Policy {
        queue: "email",
        max_attempts: 12,
        timeout: Duration::from_secs(60),
        backoff: Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(1800),
        },
    };
    type Payload = SendPayload;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_use_the_sender_domain() {
        assert_eq!(message_id_domain("Bills <bills@example.com>"), "example.com");
        assert_eq!(message_id_domain("a@b.org"), "b.org");
    }
}

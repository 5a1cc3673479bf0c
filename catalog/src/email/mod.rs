//! `email.send {message_key}`: the producer side of e-mail. A message is rendered once, when
//! it is queued ([`enqueue`]), and stored in the outbox under its message key with a
//! Message-ID; then the send job is pushed. The worker crate sends those stored bytes.
use std::time::Duration;

use lettre::message::Mailbox;
use nightshift_queue::{Backoff, Rate};
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
    let priority = templates::find(email.template)?.priority;
    let job = SendEmail::job(&payload)
        .idempotency_key(format!("email:{}", email.key))
        .priority(priority)
        .rate_key(domain_of(&recipient));
    let job_id = queues.push(job).await?;
    Ok(Queued {
        message_key: email.key.to_string(),
        message_id,
        job_id: Some(job_id),
        created,
    })
}

/// [`enqueue`] for many messages in three round trips (one insert, one read, one push),
/// for a run that alerts thousands of users at once. A message whose address cannot take mail
/// or whose key was used for another template or recipient is left out (and logged): the rest
/// go. Returns how many send jobs were pushed.
pub async fn enqueue_many(
    db: &PgPool,
    queues: &Queues,
    emails: &[NewEmail<'_>],
    id_domain: &str,
) -> Result<usize, EnqueueError> {
    let mut rows = Vec::with_capacity(emails.len());
    for e in emails {
        let Ok(to) = e.to.parse::<Mailbox>() else {
            tracing::warn!(key = e.key, "no e-mail: the address is not valid");
            continue;
        };
        let r = templates::render(e.template, e.vars)?;
        rows.push((
            e.key,
            e.template,
            to.to_string(),
            r,
            templates::find(e.template)?.priority,
        ));
    }
    sqlx::query(
        "INSERT INTO email_outbox (message_key, message_id, template, recipient, subject, text_body, html_body)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
         ON CONFLICT (message_key) DO NOTHING",
    )
    .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|_| format!("<{}@{}>", uuid::Uuid::now_v7(), id_domain))
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.2.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.3.subject.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.3.text.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.3.html.as_str()).collect::<Vec<_>>())
    .execute(db)
    .await?;
    // The keys still to send. A row there from before for another template or recipient keeps
    // its key, as `enqueue`'s KeyReused does, and is named in the log rather than dropped
    // without a word.
    let found: Vec<(String, String, String, bool, bool)> = sqlx::query_as(
        "SELECT o.message_key, o.template, o.recipient,
                o.template = t.template AND o.recipient = t.recipient, o.state = 'pending'
         FROM email_outbox o JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS t (key, template, recipient)
           ON o.message_key = t.key",
    )
    .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.2.as_str()).collect::<Vec<_>>())
    .fetch_all(db)
    .await?;
    let mut pending = Vec::with_capacity(found.len());
    for (key, template, recipient, same, is_pending) in found {
        if !same {
            tracing::warn!(key, "no e-mail: the key was used for another template or recipient");
        } else if is_pending {
            pending.push((key, template, recipient));
        }
    }
    let jobs = pending.iter().map(|(key, template, recipient)| {
        let payload = SendPayload {
            message_key: key.clone(),
        };
        let priority = templates::find(template).map_or(nightshift_queue::DEFAULT_PRIORITY, |t| t.priority);
        SendEmail::job(&payload)
            .idempotency_key(format!("email:{key}"))
            .priority(priority)
            .rate_key(domain_of(recipient))
    });
    Ok(queues.push_bulk(jobs).await?.len())
}

pub struct SendEmail;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendPayload {
    pub message_key: String,
}

/// The rate key of a message: its recipient's domain, lower-cased (receiving servers limit per
/// domain). The recipient is a mailbox the outbox accepted (`Name <a@b>` or `a@b`).
fn domain_of(recipient: &str) -> String {
    let addr = recipient.rsplit('<').next().unwrap_or(recipient).trim_end_matches('>');
    addr.rsplit('@').next().unwrap_or(addr).trim().to_ascii_lowercase()
}

impl Kind for SendEmail {
    const NAME: &'static str = "email.send";
    const EXPOSURE: Exposure = Exposure::Internal;
    /// Sends per recipient domain across every worker (`NIGHTSHIFT_EMAIL_RATE_PER_DOMAIN` and
    /// `_BURST` replace it, through `QueueConfig::rates`).
    const RATE: Option<Rate> = Some(Rate::per_second(20, 20));
    /// A password reset is part of the request that asked for it.
    const TRACE_AS_CHILD: bool = true;
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
    fn messages_are_rate_limited_by_their_recipient_domain() {
        assert_eq!(domain_of("Ann <Ann@Example.COM>"), "example.com");
        assert_eq!(domain_of("bob@mail.example.org"), "mail.example.org");
    }

    #[test]
    fn message_ids_use_the_sender_domain() {
        assert_eq!(message_id_domain("Bills <bills@example.com>"), "example.com");
        assert_eq!(message_id_domain("a@b.org"), "b.org");
    }
}

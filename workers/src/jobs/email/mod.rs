//! `email.send {message_key}`: sends one row of the e-mail outbox over SMTP with lettre.
//!
//! A message is rendered once, when it is queued (`nightshift_catalog::email::enqueue`), and stored under its message
//! key with a Message-ID; every attempt sends those bytes under that Message-ID. The send job
//! claims the row, sends, and marks it sent, so a replayed or duplicated job finds it sent and
//! does nothing. One window remains, as with any SMTP client: if the connection drops after
//! the message's final dot and before the server's reply (or the process dies between the
//! reply and the mark), the attempt is retried and the server may get a second copy, with the
//! same Message-ID, which lets mail systems and clients collapse it.
//!
//! Transient failures (4xx replies, refused or dropped connections, timeouts) retry with
//! backoff; a permanent one (5xx) ends the job dead with the server's reply kept in the row.
use std::time::Duration;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::authentication::Credentials,
};
use nightshift_catalog::email::{SendEmail, SendPayload};
use nightshift_common::{config::MailConfig, text::storable};
use nightshift_queue::{Backoff, Job, Outcome};
use secrecy::ExposeSecret;
use serde_json::json;
use sqlx::PgPool;

use super::{Handler, JobEnv};

/// The SMTP side of the workers: one pooled transport. The rate per recipient domain is the
/// queue's: a send job carries its domain's rate key, so it is leased only when it may send.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// A whole send's bound: lettre's own timeout covers connecting only, so a server that
    /// stalls after `DATA` would otherwise hold the job until its own timeout.
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("NIGHTSHIFT_SMTP_URL: {0}")]
    Url(#[from] lettre::transport::smtp::Error),
    #[error("NIGHTSHIFT_MAIL_FROM: `{0}` is not a mailbox")]
    From(String),
}

impl Mailer {
    pub fn new(config: &MailConfig) -> Result<Self, MailerError> {
        // `smtp://` is plain (local sinks), `smtp://...?tls=required` STARTTLS, `smtps://` TLS.
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)?.timeout(Some(config.smtp_timeout));
        if let (Some(user), Some(pass)) = (&config.smtp_username, &config.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.expose_secret().to_string()));
        }
        Ok(Mailer {
            transport: builder.build(),
            from: config
                .from
                .parse()
                .map_err(|_| MailerError::From(config.from.clone()))?,
            timeout: config.smtp_timeout,
        })
    }
}

/// Characters of an SMTP reply or error kept.
const SMTP_TEXT: usize = 1000;

/// How long a claim keeps other jobs off a message: past the job's timeout, so a claim never
/// lapses while its sender may still be talking to the server.
const CLAIM: Duration = Duration::from_secs(120);

type Claimed = (String, String, String, String, String);

impl Handler for SendEmail {
    async fn run(env: &JobEnv, job: &Job, p: SendPayload) -> Outcome {
        let claimed: Option<Claimed> = match sqlx::query_as(
            "UPDATE email_outbox SET claimed_by = $2, claimed_until = now() + make_interval(secs => $3), attempts = attempts + 1
             WHERE message_key = $1 AND state = 'pending'
               AND (claimed_by IS NULL OR claimed_by = $2 OR claimed_until < now())
             RETURNING recipient, subject, text_body, html_body, message_id",
        )
        .bind(&p.message_key)
        .bind(&job.id)
        .bind(CLAIM.as_secs_f64())
        .fetch_optional(&env.db)
        .await
        {
            Ok(c) => c,
            Err(e) => return Outcome::retry(format!("claiming the message: {e}")),
        };
        let Some((recipient, subject, text, html, message_id)) = claimed else {
            return not_claimed(&env.db, &p.message_key).await;
        };
        let to: Mailbox = match recipient.parse() {
            Ok(m) => m,
            Err(e) => return fail(env, &p.message_key, format!("recipient `{recipient}`: {e}")).await,
        };
        let message = Message::builder()
            .from(env.mailer.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id.clone()))
            .multipart(MultiPart::alternative_plain_html(text, html));
        let message = match message {
            Ok(m) => m,
            Err(e) => return fail(env, &p.message_key, format!("building the message: {e}")).await,
        };
        let sent = tokio::time::timeout(env.mailer.timeout, env.mailer.transport.send(message)).await;
        let Ok(sent) = sent else {
            let error = format!("SMTP: no answer within {:?}", env.mailer.timeout);
            release(&env.db, &p.message_key, &job.id, Some(&error)).await;
            return Outcome::retry(error);
        };
        // The server's words are outside text: bounded and storable before any write.
        match sent {
            Ok(reply) => {
                let reply = format!("{} {}", reply.code(), reply.message().collect::<Vec<_>>().join(" "));
                let reply = storable(&reply, SMTP_TEXT);
                mark_sent(&env.db, &p.message_key, &reply).await;
                Outcome::Succeeded(Some(json!({ "message_id": message_id, "reply": reply }).to_string()))
            }
            Err(e) if e.is_permanent() => {
                let error = storable(&format!("SMTP refused the message: {e}"), SMTP_TEXT);
                fail(env, &p.message_key, error).await
            }
            Err(e) => {
                let error = storable(&format!("SMTP: {e}"), SMTP_TEXT);
                release(&env.db, &p.message_key, &job.id, Some(&error)).await;
                Outcome::retry(error)
            }
        }
    }
}

/// Why a message could not be claimed: already sent or failed, missing, or another job has it.
async fn not_claimed(db: &PgPool, key: &str) -> Outcome {
    // State, last error, seconds left on another job's claim.
    type Row = (String, Option<String>, Option<f64>);
    let row: Result<Option<Row>, _> = sqlx::query_as(
        "SELECT state, last_error, extract(epoch FROM claimed_until - now())::float8 FROM email_outbox WHERE message_key = $1",
    )
    .bind(key)
    .fetch_optional(db)
    .await;
    match row {
        Err(e) => Outcome::retry(format!("reading the message: {e}")),
        Ok(None) => Outcome::Dead(format!("no message `{key}` in the outbox")),
        Ok(Some((state, _, _))) if state == "sent" => {
            Outcome::Succeeded(Some(json!({ "already": "sent" }).to_string()))
        }
        Ok(Some((state, error, _))) if state == "failed" => {
            Outcome::Dead(format!("message already failed: {}", error.unwrap_or_default()))
        }
        Ok(Some((_, _, left))) => Outcome::Snooze {
            reason: "another job is sending this message".into(),
            after: Duration::from_secs_f64(left.unwrap_or(1.0).clamp(1.0, CLAIM.as_secs_f64())),
        },
    }
}

async fn mark_sent(db: &PgPool, key: &str, reply: &str) {
    // The message is out: try hard to record it, since a retry would send it again.
    const RECORD: Backoff = Backoff {
        base: Duration::from_millis(200),
        max: Duration::from_millis(3200),
    };
    for attempt in 1..=5 {
        let done = sqlx::query(
            "UPDATE email_outbox SET state = 'sent', sent_at = now(), smtp_reply = $2, claimed_by = NULL,
                    claimed_until = NULL, last_error = NULL
             WHERE message_key = $1",
        )
        .bind(key)
        .bind(reply)
        .execute(db)
        .await;
        match done {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, attempt, "recording a sent e-mail failed; retrying");
                tokio::time::sleep(RECORD.ceiling(attempt)).await;
            }
        }
    }
}

async fn release(db: &PgPool, key: &str, job_id: &str, error: Option<&str>) {
    let _ = sqlx::query(
        "UPDATE email_outbox SET claimed_by = NULL, claimed_until = NULL, last_error = coalesce($3, last_error)
         WHERE message_key = $1 AND claimed_by = $2",
    )
    .bind(key)
    .bind(job_id)
    .bind(error)
    .execute(db)
    .await;
}

/// Ends the message: it will never be sent.
async fn fail(env: &JobEnv, key: &str, error: String) -> Outcome {
    let res = sqlx::query(
        "UPDATE email_outbox SET state = 'failed', last_error = $2, claimed_by = NULL, claimed_until = NULL
         WHERE message_key = $1",
    )
    .bind(key)
    .bind(&error)
    .execute(&env.db)
    .await;
    match res {
        Ok(_) => Outcome::Dead(error),
        Err(e) => Outcome::retry(format!("{error} (and recording it failed: {e})")),
    }
}

/// Formats integer minor units for people: 123456 EUR → "1234.56 EUR". Currencies with other
/// exponents than 2 are rare in this app's markets and shown with 2.
pub fn format_money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_formatted_without_floats() {
        assert_eq!(format_money(123456, "EUR"), "1234.56 EUR");
        assert_eq!(format_money(-5, "USD"), "-0.05 USD");
        assert_eq!(format_money(i64::MIN, "EUR"), "-92233720368547758.08 EUR");
    }
}

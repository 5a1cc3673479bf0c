//! `POST /v1/emails` queues a templated e-mail; `GET /v1/emails/{key}` reads its outcome.
//! Keys are the caller's idempotency keys, scoped to the token's subject.
use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use nightshift_catalog::email::{self, EnqueueError, NewEmail};
use nightshift_common::auth::Scope;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::{AppState, auth::Caller, error::ApiError, openapi::Errors};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmailRequest {
    /// password_reset, bill_reminder, low_balance, backup_failed or weekly_summary.
    template: String,
    /// The recipient's address. A token confined to a user sends only to that user's address
    /// on file: it may leave `to` out, and another address is a 404.
    #[schema(format = Email)]
    #[serde(default)]
    to: Option<String>,
    /// The template's variables; a missing one is a 422 naming it.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    vars: Option<Value>,
    /// A second request with the same key returns the first message instead of a new one.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    idempotency_key: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Queued {
    idempotency_key: String,
    /// The Message-ID header the e-mail carries (and keeps on a resend).
    message_id: String,
    /// The `email.send` job; null once the e-mail was sent or failed.
    job_id: Option<String>,
    /// False when the key was already used: nothing new was queued.
    created: bool,
}

#[derive(Serialize, ToSchema)]
pub struct EmailStatus {
    idempotency_key: String,
    template: String,
    to: String,
    message_id: String,
    /// pending, sent or failed.
    state: String,
    attempts: i32,
    last_error: Option<String>,
    /// The SMTP server's reply to the message.
    smtp_reply: Option<String>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

fn outbox_key(caller: &Caller, key: &str) -> String {
    format!("api:{}:{key}", caller.key_namespace())
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > 200 || !key.chars().all(nightshift_common::text::printable) {
        return Err(ApiError::invalid(
            "idempotency_key",
            "must be 1 to 200 characters without control or format characters",
        ));
    }
    Ok(())
}

/// Queue a templated e-mail (scope `emails:send`).
#[utoipa::path(
    post, path = "/v1/emails", tag = "emails",
    request_body = EmailRequest,
    responses(
        (status = 202, description = "Queued", body = Queued),
        (status = 200, description = "The key was used before: the first message", body = Queued),
        Errors
    ),
    security(("bearer" = ["emails:send"]))
)]
pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    caller.require(Scope::EmailsSend)?;
    let req: EmailRequest = super::body::json(body, false)?;
    let key = req.idempotency_key.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    check_key(&key)?;
    let vars = req.vars.unwrap_or_else(|| json!({}));
    let to = recipient(&state, &caller, &req.template, req.to).await?;
    let email = NewEmail {
        key: &outbox_key(&caller, &key),
        template: &req.template,
        to: &to,
        vars: &vars,
    };
    match email::enqueue(&state.db, &state.queues, email, &state.mail_domain).await {
        Ok(q) => Ok((
            if q.created {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            },
            Json(Queued {
                idempotency_key: key,
                message_id: q.message_id,
                job_id: q.job_id,
                created: q.created,
            }),
        )),
        Err(EnqueueError::Template(e)) => Err(ApiError::invalid(e.field(), e.to_string())),
        Err(e @ EnqueueError::Address(_)) => Err(ApiError::invalid("to", e.to_string())),
        Err(e @ EnqueueError::KeyReused(_)) => Err(ApiError::Conflict(e.to_string())),
        Err(EnqueueError::Database(e)) => Err(e.into()),
        Err(EnqueueError::Queue(e)) => Err(e.into()),
    }
}

/// Whom the caller may write to. A service token names any address. A token confined to a user
/// is that user's app: it writes to the user's own address on file (the default when `to` is
/// left out; another address is as unknown as another user), never with an operator template.
async fn recipient(state: &AppState, caller: &Caller, template: &str, to: Option<String>) -> Result<String, ApiError> {
    let Some(user) = caller.user() else {
        return to.ok_or_else(|| ApiError::invalid("to", "is required"));
    };
    if email::templates::find(template).is_ok_and(|t| t.operator) {
        return Err(ApiError::refused(
            "template",
            format!("`{template}` is an operator template: a user-confined token may not send it"),
        ));
    }
    let on_file: Option<String> = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user)
        .fetch_optional(&state.db)
        .await?;
    let on_file = on_file.ok_or(ApiError::NotFound("user"))?;
    match to {
        Some(to) if !to.trim().eq_ignore_ascii_case(on_file.trim()) => Err(ApiError::NotFound("recipient")),
        _ => Ok(on_file),
    }
}

type OutboxRow = (
    String,
    String,
    String,
    String,
    i32,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

/// An e-mail's outcome by its idempotency key (scope `emails:send`).
#[utoipa::path(
    get, path = "/v1/emails/{key}", tag = "emails",
    params(("key" = String, Path, min_length = 1, max_length = 200, description = "The idempotency key")),
    responses((status = 200, description = "The e-mail", body = EmailStatus), Errors),
    security(("bearer" = ["emails:send"]))
)]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<EmailStatus>, ApiError> {
    caller.require(Scope::EmailsSend)?;
    check_key(&key)?;
    let row: Option<OutboxRow> = sqlx::query_as(
        "SELECT template, recipient, message_id, state, attempts, last_error, smtp_reply, created_at, sent_at
         FROM email_outbox WHERE message_key = $1",
    )
    .bind(outbox_key(&caller, &key))
    .fetch_optional(&state.db)
    .await?;
    let (template, to, message_id, st, attempts, error, reply, created_at, sent_at) =
        row.ok_or(ApiError::NotFound("e-mail"))?;
    Ok(Json(EmailStatus {
        idempotency_key: key,
        template,
        to,
        message_id,
        state: st,
        attempts,
        last_error: error,
        smtp_reply: reply,
        created_at,
        sent_at,
    }))
}

//! `POST /v1/emails` queues a templated e-mail; `GET /v1/emails/{key}` reads its outcome.
//! Keys are the caller's idempotency keys, scoped to the token's subject.
use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use nightshift_common::auth::Scope;
use nightshift_workers::jobs::email::{self, EnqueueError, NewEmail};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{AppState, auth::Caller, error::ApiError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailRequest {
    template: String,
    to: String,
    #[serde(default)]
    vars: Option<Value>,
    /// A second request with the same key returns the first message instead of a new one.
    #[serde(default)]
    idempotency_key: Option<String>,
}

fn outbox_key(caller: &Caller, key: &str) -> String {
    format!("api:{}:{key}", caller.subject())
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > 200 || key.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "idempotency_key",
            "must be 1 to 200 characters without control characters",
        ));
    }
    Ok(())
}

pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Scope::EmailsSend)?;
    let req: EmailRequest = super::body::json(body, false)?;
    let key = req.idempotency_key.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    check_key(&key)?;
    let vars = req.vars.unwrap_or_else(|| json!({}));
    let email = NewEmail {
        key: &outbox_key(&caller, &key),
        template: &req.template,
        to: &req.to,
        vars: &vars,
    };
    match email::enqueue(&state.db, &state.queues, email, &state.mail_domain).await {
        Ok(q) => Ok((
            if q.created {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            },
            Json(json!({
                "idempotency_key": key,
                "message_id": q.message_id,
                "job_id": q.job_id,
                "created": q.created,
            })),
        )),
        Err(EnqueueError::Template(e)) => Err(ApiError::invalid(e.field(), e.to_string())),
        Err(e @ EnqueueError::Address(_)) => Err(ApiError::invalid("to", e.to_string())),
        Err(e @ EnqueueError::KeyReused(_)) => Err(ApiError::Conflict(e.to_string())),
        Err(EnqueueError::Database(e)) => Err(e.into()),
        Err(EnqueueError::Queue(e)) => Err(e.into()),
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

pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "idempotency_key": key, "template": template, "to": to, "message_id": message_id,
        "state": st, "attempts": attempts, "last_error": error, "smtp_reply": reply,
        "created_at": created_at, "sent_at": sent_at,
    })))
}

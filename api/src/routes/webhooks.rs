//! A user's webhook endpoints: `/v1/users/{id}/webhooks[/{wid}[/rotate]]`. Reminders on the
//! webhook channel deliver to them; each has a signing secret shown only when made or rotated.
use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::StatusCode,
};
use nightshift_catalog::webhook;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    reminders::positive_id,
    user::{RemindersRead, RemindersWrite, UserRoute},
};
use crate::{AppState, error::ApiError, openapi::Errors};

/// A webhook endpoint as listed: never its secret.
#[derive(Serialize, ToSchema, sqlx::FromRow)]
pub(crate) struct Webhook {
    id: i64,
    url: String,
    created_at: chrono::DateTime<chrono::Utc>,
    rotated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// While set, deliveries also carry a signature with the previous secret.
    previous_secret_valid_until: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Webhooks {
    webhooks: Vec<Webhook>,
}

/// A new endpoint with its signing secret, shown this once.
#[derive(Serialize, ToSchema)]
pub(crate) struct NewWebhook {
    id: i64,
    url: String,
    secret: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RotatedSecret {
    id: i64,
    secret: String,
    previous_secret_valid_until: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookBody {
    /// An http(s) URL.
    #[schema(format = "uri")]
    url: String,
}

/// The URL, normalized (`HTTPS://X` → `https://x/`), if it is an http(s) URL.
fn check_url(raw: &str) -> Result<String, ApiError> {
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u.to_string()),
        _ => Err(ApiError::invalid("url", format!("`{raw}` is not an http(s) URL"))),
    }
}

/// Creates an endpoint; its secret is returned here and on rotation only.
#[utoipa::path(
    post, path = "/v1/users/{id}/webhooks", tag = "reminders",
    params(("id" = i64, Path, minimum = 1, description = "The user id")), request_body = WebhookBody,
    responses((status = 201, description = "Created; the secret is shown this once", body = NewWebhook), Errors),
    security(("bearer" = ["reminders:write"]))
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    UserRoute { user, .. }: UserRoute<RemindersWrite>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<NewWebhook>), ApiError> {
    let b: WebhookBody = super::body::json(body, false)?;
    let url = check_url(&b.url)?;
    let secret = webhook::new_secret();
    let id: i64 =
        sqlx::query_scalar("INSERT INTO webhook_endpoints (user_id, url, secret) VALUES ($1, $2, $3) RETURNING id")
            .bind(user)
            .bind(&url)
            .bind(&secret)
            .fetch_one(&state.db)
            .await?;
    Ok((StatusCode::CREATED, Json(NewWebhook { id, url, secret })))
}

#[utoipa::path(
    get, path = "/v1/users/{id}/webhooks", tag = "reminders",
    params(("id" = i64, Path, minimum = 1, description = "The user id")),
    responses((status = 200, description = "The user's endpoints", body = Webhooks), Errors),
    security(("bearer" = ["reminders:read"]))
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    UserRoute { user, .. }: UserRoute<RemindersRead>,
) -> Result<Json<Webhooks>, ApiError> {
    let webhooks = sqlx::query_as(
        "SELECT id, url, created_at, rotated_at,
                CASE WHEN previous_expires_at > now() THEN previous_expires_at END AS previous_secret_valid_until
         FROM webhook_endpoints WHERE user_id = $1 ORDER BY id",
    )
    .bind(user)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(Webhooks { webhooks }))
}

/// A new secret; the old one keeps signing (as a second signature) for the grace window.
#[utoipa::path(
    post, path = "/v1/users/{id}/webhooks/{wid}/rotate", tag = "reminders",
    params(("id" = i64, Path, minimum = 1, description = "The user id"), ("wid" = i64, Path, minimum = 1, description = "The webhook endpoint id")),
    responses((status = 200, description = "Rotated; the old secret signs too for 24 h", body = RotatedSecret), Errors),
    security(("bearer" = ["reminders:write"]))
)]
pub async fn rotate_webhook(
    State(state): State<AppState>,
    UserRoute { user, .. }: UserRoute<RemindersWrite>,
    Path((_, raw_wid)): Path<(String, String)>,
) -> Result<Json<RotatedSecret>, ApiError> {
    let id = positive_id("webhook_id", &raw_wid)?;
    let secret = webhook::new_secret();
    let until: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "UPDATE webhook_endpoints SET previous_secret = secret, secret = $3, rotated_at = now(),
                previous_expires_at = now() + make_interval(secs => $4)
         WHERE user_id = $1 AND id = $2 RETURNING previous_expires_at",
    )
    .bind(user)
    .bind(id)
    .bind(&secret)
    .bind(webhook::ROTATION_GRACE.as_secs_f64())
    .fetch_optional(&state.db)
    .await?;
    let until = until.ok_or(ApiError::NotFound("webhook endpoint"))?;
    Ok(Json(RotatedSecret {
        id,
        secret,
        previous_secret_valid_until: until,
    }))
}

#[utoipa::path(
    delete, path = "/v1/users/{id}/webhooks/{wid}", tag = "reminders",
    params(("id" = i64, Path, minimum = 1, description = "The user id"), ("wid" = i64, Path, minimum = 1, description = "The webhook endpoint id")),
    responses((status = 204, description = "Deleted"), Errors),
    security(("bearer" = ["reminders:write"]))
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    UserRoute { user, .. }: UserRoute<RemindersWrite>,
    Path((_, raw_wid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = positive_id("webhook_id", &raw_wid)?;
    let res = sqlx::query("DELETE FROM webhook_endpoints WHERE user_id = $1 AND id = $2")
        .bind(user)
        .bind(id)
        .execute(&state.db)
        .await;
    match res {
        Ok(r) if r.rows_affected() == 1 => Ok(StatusCode::NO_CONTENT),
        Ok(_) => Err(ApiError::NotFound("webhook endpoint")),
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Err(ApiError::Conflict(
            "reminders still deliver to this endpoint; move or delete them first".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

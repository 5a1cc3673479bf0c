//! A user's reminders and webhook endpoints:
//! `/v1/users/{id}/reminders[/{rid}]` and `/v1/users/{id}/webhooks[/{wid}[/rotate]]`.
use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::StatusCode,
};
use chrono::{NaiveDate, NaiveTime};
use nightshift_catalog::webhook;
use nightshift_common::auth::Scope;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::cashflow::{ensure_user, user_id};
use crate::{AppState, auth::Caller, error::ApiError, openapi::Errors};

const CADENCES: &[&str] = &[
    "weekly",
    "biweekly",
    "every_n_weeks",
    "semi_monthly",
    "monthly",
    "monthly_last_day",
    "yearly",
];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Channel {
    Email,
    Webhook,
}

/// A reminder as clients write it (create and replace).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReminderBody {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    title: String,
    /// Minor units; shown in the notification.
    #[serde(default)]
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    amount: Option<i64>,
    /// The (first) due date.
    due_date: NaiveDate,
    /// weekly, biweekly, every_n_weeks, semi_monthly, monthly, monthly_last_day or yearly;
    /// once when absent.
    #[serde(default)]
    #[schema(pattern = "^(weekly|biweekly|every_n_weeks|semi_monthly|monthly|monthly_last_day|yearly)$")]
    cadence: Option<String>,
    /// every_n_weeks: the period in weeks (1 to 52).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 52)]
    interval_weeks: Option<i32>,
    /// semi_monthly: the two days of the month.
    #[serde(default)]
    days_of_month: Option<Vec<i32>>,
    #[serde(default)]
    end_date: Option<NaiveDate>,
    /// Days before the due date to notify (0 to 60).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 60)]
    lead_days: Option<i32>,
    /// Local time of the notification, HH:MM in the user's time zone (09:00 when absent).
    #[serde(default)]
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    notify_time: Option<String>,
    channel: Channel,
    /// The endpoint for the webhook channel.
    #[serde(default)]
    webhook_id: Option<i64>,
    #[serde(default)]
    active: Option<bool>,
}

/// A reminder as stored (built by the database as JSON, documented here).
#[allow(dead_code)]
#[derive(ToSchema)]
pub(crate) struct Reminder {
    id: i64,
    user_id: i64,
    title: String,
    amount: Option<i64>,
    due_date: NaiveDate,
    cadence: Option<String>,
    interval_weeks: Option<i32>,
    days_of_month: Option<Vec<i32>>,
    end_date: Option<NaiveDate>,
    lead_days: i32,
    /// HH:MM
    notify_time: String,
    /// email or webhook
    channel: String,
    webhook_id: Option<i64>,
    active: bool,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

#[allow(dead_code)]
#[derive(ToSchema)]
pub(crate) struct Reminders {
    reminders: Vec<Reminder>,
}

/// A webhook endpoint as listed: never its secret.
#[allow(dead_code)]
#[derive(ToSchema)]
pub(crate) struct Webhook {
    id: i64,
    url: String,
    created_at: chrono::DateTime<chrono::Utc>,
    rotated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// While set, deliveries also carry a signature with the previous secret.
    previous_secret_valid_until: Option<chrono::DateTime<chrono::Utc>>,
}

#[allow(dead_code)]
#[derive(ToSchema)]
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

struct Valid {
    body: ReminderBody,
    notify_time: NaiveTime,
}

async fn validate(state: &AppState, user: i64, body: ReminderBody) -> Result<Valid, ApiError> {
    let title_len = body.title.trim().chars().count();
    if !(1..=200).contains(&title_len) {
        return Err(ApiError::invalid("title", "must be 1 to 200 characters"));
    }
    if body
        .amount
        .is_some_and(|a| !(-1_000_000_000..=1_000_000_000).contains(&a))
    {
        return Err(ApiError::invalid(
            "amount",
            "must be integer minor units within ±1,000,000,000",
        ));
    }
    match body.cadence.as_deref() {
        None => {}
        Some(c) if !CADENCES.contains(&c) => {
            return Err(ApiError::invalid(
                "cadence",
                format!("`{c}` is not one of {}", CADENCES.join(", ")),
            ));
        }
        Some("every_n_weeks") if !body.interval_weeks.is_some_and(|w| (1..=52).contains(&w)) => {
            return Err(ApiError::invalid(
                "interval_weeks",
                "every_n_weeks needs interval_weeks from 1 to 52",
            ));
        }
        Some("semi_monthly") if !matches!(body.days_of_month.as_deref(), Some([a, b]) if (1..=31).contains(a) && (1..=31).contains(b) && a < b) =>
        {
            return Err(ApiError::invalid(
                "days_of_month",
                "semi_monthly needs two increasing days of the month, 1 to 31",
            ));
        }
        Some(_) => {}
    }
    // Checked whatever the cadence: the table refuses out-of-range values in any row.
    if body.interval_weeks.is_some_and(|w| !(1..=52).contains(&w)) {
        return Err(ApiError::invalid("interval_weeks", "must be 1 to 52"));
    }
    if body
        .days_of_month
        .as_deref()
        .is_some_and(|d| !matches!(d, [a, b] if (1..=31).contains(a) && (1..=31).contains(b) && a < b))
    {
        return Err(ApiError::invalid(
            "days_of_month",
            "must be two increasing days of the month, 1 to 31",
        ));
    }
    if body.end_date.is_some_and(|e| e < body.due_date) {
        return Err(ApiError::invalid("end_date", "must not be before due_date"));
    }
    if body.lead_days.is_some_and(|d| !(0..=60).contains(&d)) {
        return Err(ApiError::invalid("lead_days", "must be 0 to 60"));
    }
    let notify_time = match body.notify_time.as_deref() {
        None => NaiveTime::from_hms_opt(9, 0, 0).expect("09:00"),
        Some(t) => NaiveTime::parse_from_str(t, "%H:%M")
            .map_err(|_| ApiError::invalid("notify_time", format!("`{t}` is not a HH:MM time")))?,
    };
    match (&body.channel, body.webhook_id) {
        (Channel::Email, Some(_)) => {
            return Err(ApiError::invalid(
                "webhook_id",
                "only a webhook reminder has a webhook_id",
            ));
        }
        (Channel::Webhook, None) => {
            return Err(ApiError::invalid("webhook_id", "a webhook reminder needs webhook_id"));
        }
        (Channel::Webhook, Some(w)) => {
            let owned: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1 AND user_id = $2)")
                    .bind(w)
                    .bind(user)
                    .fetch_one(&state.db)
                    .await?;
            if !owned {
                return Err(ApiError::invalid(
                    "webhook_id",
                    "no such webhook endpoint for this user",
                ));
            }
        }
        (Channel::Email, None) => {}
    }
    Ok(Valid { body, notify_time })
}

fn positive_id(field: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid(field, "must be a positive integer"))
}

fn reminder_id(raw: &str) -> Result<i64, ApiError> {
    positive_id("reminder_id", raw)
}

/// The stored columns a reminder is shown with.
const SHOW: &str = "jsonb_build_object('id', id, 'user_id', user_id, 'title', title, 'amount', amount,
    'due_date', due_date, 'cadence', cadence, 'interval_weeks', interval_weeks, 'days_of_month', days_of_month,
    'end_date', end_date, 'lead_days', lead_days, 'notify_time', to_char(notify_time, 'HH24:MI'),
    'channel', channel, 'webhook_id', webhook_id, 'active', active, 'created_at', created_at,
    'updated_at', updated_at)";

#[utoipa::path(
    post, path = "/v1/users/{id}/reminders", tag = "reminders",
    params(("id" = i64, Path, minimum = 1, description = "The user id")), request_body = ReminderBody,
    responses((status = 201, description = "Created", body = Reminder), Errors),
    security(("bearer" = ["reminders:write"]))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Scope::RemindersWrite)?;
    let user = user_id(&caller, &raw_id)?;
    let body: ReminderBody = super::body::json(body, false)?;
    ensure_user(&state, user).await?;
    let Valid { body: b, notify_time } = validate(&state, user, body).await?;
    let sql = format!(
        "INSERT INTO reminders (user_id, title, amount, due_date, cadence, interval_weeks, days_of_month,
                                end_date, lead_days, notify_time, channel, webhook_id, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {SHOW}"
    );
    let shown: Value = bind_fields(sqlx::query_scalar(&sql).bind(user), &b, notify_time)
        .fetch_one(&state.db)
        .await?;
    Ok((StatusCode::CREATED, Json(shown)))
}

type ScalarQuery<'q> = sqlx::query::QueryScalar<'q, sqlx::Postgres, Value, sqlx::postgres::PgArguments>;

/// Binds a reminder's fields as $2..$13, after the user ($1).
fn bind_fields<'q>(q: ScalarQuery<'q>, b: &'q ReminderBody, notify_time: NaiveTime) -> ScalarQuery<'q> {
    q.bind(b.title.trim())
        .bind(b.amount)
        .bind(b.due_date)
        .bind(&b.cadence)
        .bind(b.interval_weeks)
        .bind(&b.days_of_month)
        .bind(b.end_date)
        .bind(b.lead_days.unwrap_or(0))
        .bind(notify_time)
        .bind(channel_name(&b.channel))
        .bind(b.webhook_id)
        .bind(b.active.unwrap_or(true))
}

fn channel_name(c: &Channel) -> &'static str {
    match c {
        Channel::Email => "email",
        Channel::Webhook => "webhook",
    }
}

#[utoipa::path(
    get, path = "/v1/users/{id}/reminders", tag = "reminders",
    params(("id" = i64, Path, minimum = 1, description = "The user id")),
    responses((status = 200, description = "The user's reminders", body = Reminders), Errors),
    security(("bearer" = ["reminders:read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::RemindersRead)?;
    let user = user_id(&caller, &raw_id)?;
    ensure_user(&state, user).await?;
    let rows: Vec<Value> = sqlx::query_scalar(&format!("SELECT {SHOW} FROM reminders WHERE user_id = $1 ORDER BY id"))
        .bind(user)
        .fetch_all(&state.db)
        .await?;
    Ok(Json(json!({ "reminders": rows })))
}

#[utoipa::path(
    get, path = "/v1/users/{id}/reminders/{rid}", tag = "reminders",
    params(("id" = i64, Path, minimum = 1, description = "The user id"), ("rid" = i64, Path, minimum = 1, description = "The reminder id")),
    responses((status = 200, description = "The reminder", body = Reminder), Errors),
    security(("bearer" = ["reminders:read"]))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((raw_id, raw_rid)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::RemindersRead)?;
    let (user, id) = (user_id(&caller, &raw_id)?, reminder_id(&raw_rid)?);
    let row: Option<Value> =
        sqlx::query_scalar(&format!("SELECT {SHOW} FROM reminders WHERE user_id = $1 AND id = $2"))
            .bind(user)
            .bind(id)
            .fetch_optional(&state.db)
            .await?;
    row.map(Json).ok_or(ApiError::NotFound("reminder"))
}

/// Replaces a reminder. Deliveries already made stay: a changed due rule notifies for its new
/// dates, never twice for one it already notified.
#[utoipa::path(
    put, path = "/v1/users/{id}/reminders/{rid}", tag = "reminders",
    params(("id" = i64, Path, minimum = 1, description = "The user id"), ("rid" = i64, Path, minimum = 1, description = "The reminder id")), request_body = ReminderBody,
    responses((status = 200, description = "Replaced", body = Reminder), Errors),
    security(("bearer" = ["reminders:write"]))
)]
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path((raw_id, raw_rid)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::RemindersWrite)?;
    let (user, id) = (user_id(&caller, &raw_id)?, reminder_id(&raw_rid)?);
    let body: ReminderBody = super::body::json(body, false)?;
    let Valid { body: b, notify_time } = validate(&state, user, body).await?;
    let sql = format!(
        "UPDATE reminders SET title = $2, amount = $3, due_date = $4, cadence = $5, interval_weeks = $6,
                days_of_month = $7, end_date = $8, lead_days = $9, notify_time = $10, channel = $11,
                webhook_id = $12, active = $13, updated_at = now()
         WHERE user_id = $1 AND id = $14 RETURNING {SHOW}"
    );
    let shown: Option<Value> = bind_fields(sqlx::query_scalar(&sql).bind(user), &b, notify_time)
        .bind(id)
        .fetch_optional(&state.db)
        .await?;
    shown.map(Json).ok_or(ApiError::NotFound("reminder"))
}

#[utoipa::path(
    delete, path = "/v1/users/{id}/reminders/{rid}", tag = "reminders",
    params(("id" = i64, Path, minimum = 1, description = "The user id"), ("rid" = i64, Path, minimum = 1, description = "The reminder id")),
    responses((status = 204, description = "Deleted"), Errors),
    security(("bearer" = ["reminders:write"]))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((raw_id, raw_rid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::RemindersWrite)?;
    let (user, id) = (user_id(&caller, &raw_id)?, reminder_id(&raw_rid)?);
    let deleted = sqlx::query("DELETE FROM reminders WHERE user_id = $1 AND id = $2")
        .bind(user)
        .bind(id)
        .execute(&state.db)
        .await?
        .rows_affected();
    if deleted == 1 {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("reminder"))
    }
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
    caller: Caller,
    Path(raw_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<NewWebhook>), ApiError> {
    caller.require(Scope::RemindersWrite)?;
    let user = user_id(&caller, &raw_id)?;
    let b: WebhookBody = super::body::json(body, false)?;
    let url = check_url(&b.url)?;
    ensure_user(&state, user).await?;
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
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::RemindersRead)?;
    let user = user_id(&caller, &raw_id)?;
    ensure_user(&state, user).await?;
    let rows: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object('id', id, 'url', url, 'created_at', created_at, 'rotated_at', rotated_at,
                'previous_secret_valid_until', CASE WHEN previous_expires_at > now() THEN previous_expires_at END)
         FROM webhook_endpoints WHERE user_id = $1 ORDER BY id",
    )
    .bind(user)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(json!({ "webhooks": rows })))
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
    caller: Caller,
    Path((raw_id, raw_wid)): Path<(String, String)>,
) -> Result<Json<RotatedSecret>, ApiError> {
    caller.require(Scope::RemindersWrite)?;
    let user = user_id(&caller, &raw_id)?;
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
    caller: Caller,
    Path((raw_id, raw_wid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require(Scope::RemindersWrite)?;
    let user = user_id(&caller, &raw_id)?;
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

//! A user's reminders: `/v1/users/{id}/reminders[/{rid}]`.
use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection},
    http::StatusCode,
};
use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use nightshift_catalog::cashflow;

use super::user::{RemindersRead, RemindersWrite, UserRoute};
use crate::{AppState, error::ApiError, openapi::Errors};

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

/// A reminder as stored.
#[derive(Serialize, ToSchema, sqlx::FromRow)]
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

#[derive(Serialize, ToSchema)]
pub(crate) struct Reminders {
    reminders: Vec<Reminder>,
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
    if let Some(c) = body.cadence.as_deref() {
        super::cadence::check("", c, body.interval_weeks, body.days_of_month.as_deref())?;
    }
    // Checked whatever the cadence: the table refuses out-of-range values in any row.
    if body.interval_weeks.is_some_and(|w| !(1..=52).contains(&w)) {
        return Err(ApiError::invalid("interval_weeks", "must be 1 to 52"));
    }
    if body
        .days_of_month
        .as_deref()
        .is_some_and(|d| !super::cadence::two_days(d))
    {
        return Err(ApiError::invalid(
            "days_of_month",
            "must be two increasing days of the month, 1 to 31",
        ));
    }
    // The finance data's date range, for the same reason: the scan adds days and months to
    // these dates, and the calendar ends.
    cashflow::check_date("due_date", body.due_date)?;
    if let Some(end) = body.end_date {
        cashflow::check_date("end_date", end)?;
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

pub(super) fn positive_id(field: &str, raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::invalid(field, "must be a positive integer"))
}

fn reminder_id(raw: &str) -> Result<i64, ApiError> {
    positive_id("reminder_id", raw)
}

/// The stored columns of a [`Reminder`].
const SHOW: &str = "id, user_id, title, amount, due_date, cadence, interval_weeks, days_of_month, end_date,
    lead_days, to_char(notify_time, 'HH24:MI') AS notify_time, channel, webhook_id, active, created_at, updated_at";

#[utoipa::path(
    post, path = "/v1/users/{id}/reminders", tag = "reminders",
    params(("id" = i64, Path, minimum = 1, description = "The user id")), request_body = ReminderBody,
    responses((status = 201, description = "Created", body = Reminder), Errors),
    security(("bearer" = ["reminders:write"]))
)]
pub async fn create(
    State(state): State<AppState>,
    UserRoute { user, .. }: UserRoute<RemindersWrite>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Reminder>), ApiError> {
    let body: ReminderBody = super::body::json(body, false)?;
    let Valid { body: b, notify_time } = validate(&state, user, body).await?;
    let sql = format!(
        "INSERT INTO reminders (user_id, title, amount, due_date, cadence, interval_weeks, days_of_month,
                                end_date, lead_days, notify_time, channel, webhook_id, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {SHOW}"
    );
    let shown: Reminder = bind_fields(sqlx::query_as(&sql).bind(user), &b, notify_time)
        .fetch_one(&state.db)
        .await?;
    Ok((StatusCode::CREATED, Json(shown)))
}

type RowQuery<'q> = sqlx::query::QueryAs<'q, sqlx::Postgres, Reminder, sqlx::postgres::PgArguments>;

/// Binds a reminder's fields as $2..$13, after the user ($1).
fn bind_fields<'q>(q: RowQuery<'q>, b: &'q ReminderBody, notify_time: NaiveTime) -> RowQuery<'q> {
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
    UserRoute { user, .. }: UserRoute<RemindersRead>,
) -> Result<Json<Reminders>, ApiError> {
    let reminders = sqlx::query_as(&format!("SELECT {SHOW} FROM reminders WHERE user_id = $1 ORDER BY id"))
        .bind(user)
        .fetch_all(&state.db)
        .await?;
    Ok(Json(Reminders { reminders }))
}

#[utoipa::path(
    get, path = "/v1/users/{id}/reminders/{rid}", tag = "reminders",
    params(("id" = i64, Path, minimum = 1, description = "The user id"), ("rid" = i64, Path, minimum = 1, description = "The reminder id")),
    responses((status = 200, description = "The reminder", body = Reminder), Errors),
    security(("bearer" = ["reminders:read"]))
)]
pub async fn get(
    State(state): State<AppState>,
    UserRoute { user, .. }: UserRoute<RemindersRead>,
    Path((_, raw_rid)): Path<(String, String)>,
) -> Result<Json<Reminder>, ApiError> {
    let id = reminder_id(&raw_rid)?;
    let row: Option<Reminder> = sqlx::query_as(&format!("SELECT {SHOW} FROM reminders WHERE user_id = $1 AND id = $2"))
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
    UserRoute { user, .. }: UserRoute<RemindersWrite>,
    Path((_, raw_rid)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Reminder>, ApiError> {
    let id = reminder_id(&raw_rid)?;
    let body: ReminderBody = super::body::json(body, false)?;
    let Valid { body: b, notify_time } = validate(&state, user, body).await?;
    let sql = format!(
        "UPDATE reminders SET title = $2, amount = $3, due_date = $4, cadence = $5, interval_weeks = $6,
                days_of_month = $7, end_date = $8, lead_days = $9, notify_time = $10, channel = $11,
                webhook_id = $12, active = $13, updated_at = now()
         WHERE user_id = $1 AND id = $14 RETURNING {SHOW}"
    );
    let shown: Option<Reminder> = bind_fields(sqlx::query_as(&sql).bind(user), &b, notify_time)
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
    UserRoute { user, .. }: UserRoute<RemindersWrite>,
    Path((_, raw_rid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = reminder_id(&raw_rid)?;
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

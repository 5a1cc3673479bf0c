//! A user's finance data, the projection's inputs, through the API: the user
//! (`/v1/users/{id}`), each account, recurring item and one-off transaction on its own
//! (`items`), and all of it at once for apps that own the truth (`PUT /v1/users/{id}/finance`,
//! one transaction). Every change queues a projection refresh. Money is integer minor units.
use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::StatusCode,
};
use nightshift_catalog::{
    Kind, KindSpec,
    cashflow::{Project, ProjectPayload},
};
use nightshift_queue::{Dedupe, DedupeMode};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;

use super::user::{FinanceRead, FinanceWrite, UserRoute, UserTarget};
use crate::{AppState, auth::Caller, error::ApiError, openapi::Errors};

pub mod items;
mod model;

use model::{Account, Item, Profile, RecurringItem, Scheduled, check_all};

/// The body of a `PUT`: room for the item limits at realistic name lengths.
pub const MAX_FINANCE_BYTES: usize = 1024 * 1024;

/// Everything the projection knows of a user.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Finance {
    /// Where low-balance alerts go.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// An IANA time zone (`Europe/Paris`); UTC when absent.
    #[serde(default)]
    time_zone: Option<String>,
    /// ISO 4217 code; EUR when absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
    /// A projected balance below this (minor units) is a shortfall; 0 when absent.
    #[serde(default)]
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    low_balance_threshold: i64,
    #[serde(default)]
    #[schema(max_items = 100)]
    accounts: Vec<Account>,
    /// Income (amount > 0) and bills (amount < 0) that repeat.
    #[serde(default)]
    #[schema(max_items = 1000)]
    recurring: Vec<RecurringItem>,
    /// One-off transactions on a date.
    #[serde(default)]
    #[schema(max_items = 5000)]
    scheduled: Vec<Scheduled>,
}

impl Finance {
    fn profile(&self) -> Profile {
        Profile {
            email: self.email.clone(),
            time_zone: self.time_zone.clone().unwrap_or_else(|| "UTC".into()),
            currency: self.currency.clone().unwrap_or_else(|| "EUR".into()),
            low_balance_threshold: self.low_balance_threshold,
        }
    }
}

/// What a replacement stored, and the projection it queued.
#[derive(Serialize, ToSchema)]
pub(crate) struct Stored {
    user_id: i64,
    accounts: usize,
    recurring: usize,
    scheduled: usize,
    /// The `cashflow.project` job computing the new projection.
    refresh_job: String,
}

/// Queues the projection a change makes due, debounced per user: a burst of changes (an app
/// editing five bills in a minute) makes one projection, `cashflow_debounce` after the last,
/// whichever client made them. After the commit, so it reads the new data; should the queue
/// refuse (Redis down, a rate limit), the data is stored and the client's retry of the same
/// request queues it. The id is the projection's, which may be another client's job.
pub(crate) async fn queue_refresh(state: &AppState, caller: &Caller, user: i64) -> Result<String, ApiError> {
    let mut job = Project::job(&ProjectPayload {
        user_id: user,
        as_of: None,
        horizon_days: None,
        include_as_of: false,
    });
    if !state.cashflow_debounce.is_zero() {
        job = job.dedupe(Dedupe {
            key: format!("finance-change:{user}"),
            mode: DedupeMode::Debounce,
            window: state.cashflow_debounce,
        });
    }
    let checked = super::enqueue::Checked {
        spec: KindSpec::of::<Project>(),
        job: job.into_inner(),
    };
    Ok(super::enqueue::push_one(state, caller, checked).await?.id)
}

/// Replaces the user's items of one kind with `items`, keeping the ids they name; an id that
/// is not already this user's is a 422 (it may be another user's).
async fn replace_all<T: Item>(db: &mut PgConnection, user: i64, field: &str, items: &[T]) -> Result<(), ApiError> {
    let kept: Vec<i64> = items.iter().filter_map(Item::id).collect();
    let known: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT id FROM {} WHERE user_id = $1 AND id = ANY($2)",
        T::TABLE
    ))
    .bind(user)
    .bind(&kept)
    .fetch_all(&mut *db)
    .await?;
    if let Some(i) = items.iter().position(|x| x.id().is_some_and(|id| !known.contains(&id))) {
        return Err(ApiError::invalid(
            format!("{field}[{i}].id"),
            format!("is not one of this user's {} ids (leave it out for a new one)", T::WHAT),
        ));
    }
    sqlx::query(&format!("DELETE FROM {} WHERE user_id = $1", T::TABLE))
        .bind(user)
        .execute(&mut *db)
        .await?;
    T::insert(db, user, items).await?;
    Ok(())
}

/// Replace a user's finance data (scope `finance:write`).
///
/// Creates the user if needed; replaces their accounts, recurring items and scheduled
/// transactions with these, all or nothing; then queues a projection. Idempotent: the same
/// body twice leaves the same data. An item with the `id` of one the user has keeps it, so
/// projections' breakdowns keep pointing at it. A user-confined token may write only its own
/// user.
#[utoipa::path(
    put, path = "/v1/users/{id}/finance", tag = "finance",
    params(("id" = i64, Path, minimum = 1, description = "The user id")),
    request_body = Finance,
    responses((status = 200, description = "Stored; a projection is queued", body = Stored), Errors),
    security(("bearer" = ["finance:write"]))
)]
pub async fn replace(
    State(state): State<AppState>,
    UserTarget { caller, user, .. }: UserTarget<FinanceWrite>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Stored>, ApiError> {
    let mut f: Finance = super::body::json_within(body, false, MAX_FINANCE_BYTES)?;
    let mut profile = f.profile();
    profile.check()?;
    check_all("accounts", &mut f.accounts)?;
    check_all("recurring", &mut f.recurring)?;
    check_all("scheduled", &mut f.scheduled)?;
    let mut tx = state.db.begin().await?;
    profile.upsert(&mut tx, user).await?;
    replace_all(&mut tx, user, "accounts", &f.accounts).await?;
    replace_all(&mut tx, user, "recurring", &f.recurring).await?;
    replace_all(&mut tx, user, "scheduled", &f.scheduled).await?;
    tx.commit().await?;
    Ok(Json(Stored {
        user_id: user,
        accounts: f.accounts.len(),
        recurring: f.recurring.len(),
        scheduled: f.scheduled.len(),
        refresh_job: queue_refresh(&state, &caller, user).await?,
    }))
}

/// A user's finance data, with the ids of their items (scope `finance:read`).
#[utoipa::path(
    get, path = "/v1/users/{id}/finance", tag = "finance",
    params(("id" = i64, Path, minimum = 1, description = "The user id")),
    responses((status = 200, description = "The user's finance data", body = Finance), Errors),
    security(("bearer" = ["finance:read"]))
)]
pub async fn read(
    State(state): State<AppState>,
    UserRoute { user, .. }: UserRoute<FinanceRead>,
) -> Result<Json<Finance>, ApiError> {
    let p = profile_of(&state, user).await?;
    Ok(Json(Finance {
        email: p.email,
        time_zone: Some(p.time_zone),
        currency: Some(p.currency),
        low_balance_threshold: p.low_balance_threshold,
        accounts: items::all(&state.db, user).await?,
        recurring: items::all(&state.db, user).await?,
        scheduled: items::all(&state.db, user).await?,
    }))
}

async fn profile_of(state: &AppState, user: i64) -> Result<Profile, ApiError> {
    Ok(sqlx::query_as(
        "SELECT email, time_zone, currency::text AS currency, low_balance_threshold FROM users WHERE id = $1",
    )
    .bind(user)
    .fetch_one(&state.db)
    .await?)
}

/// Create a user or update their profile (scope `finance:write`); their items stay. A change
/// of time zone or threshold changes the projection: a refresh is queued.
#[utoipa::path(
    put, path = "/v1/users/{id}", tag = "finance",
    params(("id" = i64, Path, minimum = 1, description = "The user id")),
    request_body = Profile,
    responses((status = 200, description = "Stored", body = Profile), Errors),
    security(("bearer" = ["finance:write"]))
)]
pub async fn put_user(
    State(state): State<AppState>,
    UserTarget { caller, user, .. }: UserTarget<FinanceWrite>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Profile>, ApiError> {
    let mut profile: Profile = super::body::json(body, false)?;
    profile.check()?;
    profile.upsert(&mut *state.db.acquire().await?, user).await?;
    queue_refresh(&state, &caller, user).await?;
    Ok(Json(profile))
}

/// A user's profile (scope `finance:read`).
#[utoipa::path(
    get, path = "/v1/users/{id}", tag = "finance",
    params(("id" = i64, Path, minimum = 1, description = "The user id")),
    responses((status = 200, description = "The user", body = Profile), Errors),
    security(("bearer" = ["finance:read"]))
)]
pub async fn get_user(
    State(state): State<AppState>,
    UserRoute { user, .. }: UserRoute<FinanceRead>,
) -> Result<Json<Profile>, ApiError> {
    Ok(Json(profile_of(&state, user).await?))
}

/// Delete a user with everything about them: items, projections, reminders, alerts (scope
/// `finance:write`). Jobs already queued for them find no user and end. The id is kept as
/// deleted: a token confined to the user, issued before now, can neither read nor recreate
/// it; a service token may recreate it.
#[utoipa::path(
    delete, path = "/v1/users/{id}", tag = "finance",
    params(("id" = i64, Path, minimum = 1, description = "The user id")),
    responses((status = 204, description = "Deleted"), Errors),
    security(("bearer" = ["finance:write"]))
)]
pub async fn delete_user(
    State(state): State<AppState>,
    UserRoute { user, .. }: UserRoute<FinanceWrite>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.db.begin().await?;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO deleted_users (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET deleted_at = now()")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

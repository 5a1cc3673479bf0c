// Over 400 lines: three routes and the response types their OpenAPI schema derives from, half of it type declarations.
//! `POST /v1/users/{id}/cashflow/refresh` and `GET /v1/users/{id}/cashflow`.
use axum::{
    Json,
    body::Bytes,
    extract::{
        Query, State,
        rejection::{BytesRejection, QueryRejection},
    },
    http::StatusCode,
};
use chrono::{DateTime, Days, NaiveDate, Utc};
use nightshift_catalog::{
    Kind, KindSpec,
    cashflow::{self, Project, ProjectPayload},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::user::{JobsRead, JobsWrite, UserRoute};
use crate::{AppState, error::ApiError, openapi::Errors};

/// A YYYY-MM-DD date inside the range the finance data accepts.
fn date(field: &str, raw: &str) -> Result<NaiveDate, ApiError> {
    let d = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|e| ApiError::invalid(field, format!("`{raw}` is not a YYYY-MM-DD date: {e}")))?;
    cashflow::check_date(field, d).map_err(ApiError::from)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshRequest {
    /// The first day (YYYY-MM-DD); today in the user's time zone when absent.
    #[serde(default)]
    #[schema(format = Date)]
    as_of: Option<String>,
    /// Days to project, 1 to 366 (90 when absent).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 366)]
    horizon_days: Option<u32>,
    /// Whether the balances already hold the items of the day they were read (an account's
    /// `balance_date`, or `as_of` for an account without one): set it when today's payday is
    /// already in the balance, so it is not counted twice. False when absent.
    #[serde(default)]
    include_as_of: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RefreshQuery {
    /// Seconds to wait for the projection, 0 to 5: within them the answer is the projection
    /// (200), after them the queued job (202). 0 (the default) answers at once. Short on
    /// purpose: a request held open is a connection the server keeps for it.
    #[param(minimum = 0, maximum = 5)]
    wait: Option<u64>,
}

/// The projection job, queued.
#[derive(Serialize, ToSchema)]
pub struct Refreshing {
    /// The `cashflow.project` job.
    id: String,
    /// The date it projects from: the one asked for, or the user's today in their time zone.
    as_of: NaiveDate,
}

/// Project a user's balance now (scope `jobs:write`): queues `cashflow.project`, and with
/// `?wait=` answers with the projection once it is stored.
#[utoipa::path(
    post, path = "/v1/users/{id}/cashflow/refresh", tag = "cashflow",
    params(("id" = i64, Path, minimum = 1, description = "The user id"), RefreshQuery),
    request_body(content = Option<RefreshRequest>, description = "May be empty"),
    responses(
        (status = 200, description = "Projected within the wait", body = Projection),
        (status = 202, description = "The projection job is queued", body = Refreshing),
        Errors
    ),
    security(("bearer" = ["jobs:write"]))
)]
pub async fn refresh(
    State(state): State<AppState>,
    UserRoute { caller, user: id, .. }: UserRoute<JobsWrite>,
    query: Result<Query<RefreshQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let Query(q) = query.map_err(|e| ApiError::invalid("wait", e.body_text()))?;
    let wait = q.wait.unwrap_or(0);
    if wait > 5 {
        return Err(ApiError::invalid("wait", "must be 0 to 5 seconds"));
    }
    let req: RefreshRequest = super::body::json(body, true)?;
    let asked = req.as_of.as_deref().map(|d| date("as_of", d)).transpose()?;
    // Named now, not left to the worker: the answer says which day it will be.
    let as_of = match asked {
        Some(d) => d,
        None => standing(&state, id).await?.today,
    };
    let payload = ProjectPayload {
        user_id: id,
        as_of: Some(as_of),
        horizon_days: req.horizon_days,
        include_as_of: req.include_as_of,
    };
    // The body's fields are the payload's: a refused one is named as sent.
    Project::check(&payload)?;
    let job = Project::job(&payload);
    let checked = super::enqueue::Checked {
        spec: KindSpec::of::<Project>(),
        job: job.into_inner(),
    };
    let job_id = super::enqueue::push_one(&state, &caller, checked).await?.id;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait);
    let queue = state.queues.of::<Project>();
    while wait > 0 && tokio::time::Instant::now() < deadline {
        match queue.inspect(&job_id).await?.map(|r| r.state) {
            Some(nightshift_queue::JobState::Succeeded) => {
                // Read afresh: this projection may just have become the current one.
                if let Some(p) = projection(&state, id, as_of, standing(&state, id).await?).await? {
                    return Ok(Json(p).into_response());
                }
                break;
            }
            Some(s) if s.is_final() => break,
            _ => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
    Ok((StatusCode::ACCEPTED, Json(Refreshing { id: job_id, as_of })).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    /// The projection made as of this date (YYYY-MM-DD, a what-if or the current one); the
    /// current one when absent.
    #[param(format = Date)]
    as_of: Option<String>,
}

/// A user's projected balance, day by day, in minor units of the user's currency.
#[derive(Serialize, ToSchema)]
pub struct Projection {
    user_id: i64,
    as_of: NaiveDate,
    /// `current`: the newest projection as of a day up to the user's today (in their time
    /// zone); `what_if`: one refreshed for another date, which never replaces the current one.
    #[schema(pattern = "^(current|what_if)$")]
    role: &'static str,
    /// ISO 4217 code of every amount.
    currency: String,
    /// Whether the balances were taken to hold the items of the day they were read.
    include_as_of: bool,
    /// The newest `balance_date` of the user's accounts, if any carries one: their balances
    /// were rolled from that day to `as_of` by the items in between.
    balance_date: Option<NaiveDate>,
    /// The balance before `as_of`'s items.
    opening: i64,
    lowest_balance: i64,
    lowest_date: NaiveDate,
    /// The first day below the user's threshold, if any.
    shortfall: Option<Shortfall>,
    /// The first day whose closing balance is below zero, if any.
    first_below_zero: Option<NaiveDate>,
    computed_at: DateTime<Utc>,
    days: Vec<Day>,
}

#[derive(Serialize, ToSchema)]
pub struct Shortfall {
    date: NaiveDate,
    threshold: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Day {
    date: NaiveDate,
    inflow: i64,
    /// Positive: the sum of the day's outgoing amounts.
    outflow: i64,
    closing: i64,
    /// The occurrences booked on the day, recurring items first.
    items: Vec<DayItem>,
}

/// One occurrence of an item on a day, as it was when projected.
#[derive(Serialize, ToSchema)]
pub struct DayItem {
    /// The id under `/v1/users/{id}/recurring` or `/v1/users/{id}/scheduled`.
    id: i64,
    #[schema(pattern = "^(recurring|scheduled)$")]
    source: &'static str,
    name: String,
    /// Signed: income > 0, a bill < 0.
    amount: i64,
}

/// A stored projection, as listed.
#[derive(Serialize, ToSchema, sqlx::FromRow)]
pub struct StoredProjection {
    as_of: NaiveDate,
    computed_at: DateTime<Utc>,
    #[schema(pattern = "^(current|what_if)$")]
    #[sqlx(skip)]
    role: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Projections {
    /// Newest `as_of` first.
    projections: Vec<StoredProjection>,
}

/// What every answer about a user's projections needs, read once per request.
struct Standing {
    /// The user's today, in their time zone.
    today: NaiveDate,
    currency: String,
    /// The `as_of` of the current projection: the newest up to `today`.
    current: Option<NaiveDate>,
}

async fn standing(state: &AppState, user: i64) -> Result<Standing, ApiError> {
    let (tz, currency): (String, String) = sqlx::query_as("SELECT time_zone, currency::text FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(&state.db)
        .await?;
    // A zone PostgreSQL holds but chrono-tz does not know counts as UTC, as in the worker.
    let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::UTC);
    let today = nightshift_queue::clock::now().with_timezone(&tz).date_naive();
    let current = sqlx::query_scalar("SELECT max(as_of) FROM cashflow_projections WHERE user_id = $1 AND as_of <= $2")
        .bind(user)
        .bind(today)
        .fetch_one(&state.db)
        .await?;
    Ok(Standing {
        today,
        currency,
        current,
    })
}

/// A user's stored projections, the current one and the what-ifs (scope `jobs:read`).
#[utoipa::path(
    get, path = "/v1/users/{id}/cashflow/projections", tag = "cashflow",
    params(("id" = i64, Path, minimum = 1, description = "The user id")),
    responses((status = 200, description = "The stored projections", body = Projections), Errors),
    security(("bearer" = ["jobs:read"]))
)]
pub async fn list(
    State(state): State<AppState>,
    UserRoute { user: id, .. }: UserRoute<JobsRead>,
) -> Result<Json<Projections>, ApiError> {
    let current = standing(&state, id).await?.current;
    let mut projections: Vec<StoredProjection> = sqlx::query_as(
        "SELECT as_of, computed_at FROM cashflow_projections WHERE user_id = $1 ORDER BY as_of DESC LIMIT 1000",
    )
    .bind(id)
    .fetch_all(&state.db)
    .await?;
    for p in &mut projections {
        p.role = if Some(p.as_of) == current { "current" } else { "what_if" };
    }
    Ok(Json(Projections { projections }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// The projection to delete (YYYY-MM-DD).
    #[param(format = Date)]
    as_of: String,
}

/// Delete one stored projection, a what-if or the current one (scope `jobs:write`).
#[utoipa::path(
    delete, path = "/v1/users/{id}/cashflow", tag = "cashflow",
    params(("id" = i64, Path, minimum = 1, description = "The user id"), DeleteQuery),
    responses((status = 204, description = "Deleted"), Errors),
    security(("bearer" = ["jobs:write"]))
)]
pub async fn delete(
    State(state): State<AppState>,
    UserRoute { user: id, .. }: UserRoute<JobsWrite>,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("as_of", e.body_text()))?;
    let as_of = date("as_of", &q.as_of)?;
    let deleted = sqlx::query("DELETE FROM cashflow_projections WHERE user_id = $1 AND as_of = $2")
        .bind(id)
        .bind(as_of)
        .execute(&state.db)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(ApiError::NotFound("projection"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(sqlx::FromRow)]
struct ProjectionRow {
    as_of: NaiveDate,
    opening: i64,
    inflows: Vec<i64>,
    outflows: Vec<i64>,
    closing: Vec<i64>,
    lowest_balance: i64,
    lowest_date: NaiveDate,
    first_shortfall: Option<NaiveDate>,
    threshold: i64,
    computed_at: DateTime<Utc>,
    include_as_of: bool,
    balance_date: Option<NaiveDate>,
    entry_day: Vec<i32>,
    entry_item: Vec<i64>,
    entry_one_off: Vec<bool>,
    entry_name: Vec<String>,
    entry_amount: Vec<i64>,
}

/// The current projection (or the one for `?as_of=`), day by day (scope `jobs:read`).
#[utoipa::path(
    get, path = "/v1/users/{id}/cashflow", tag = "cashflow",
    params(("id" = i64, Path, minimum = 1, description = "The user id"), ReadQuery),
    responses((status = 200, description = "The projection", body = Projection), Errors),
    security(("bearer" = ["jobs:read"]))
)]
pub async fn read(
    State(state): State<AppState>,
    UserRoute { user: id, .. }: UserRoute<JobsRead>,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Json<Projection>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let asked = q.as_of.as_deref().map(|d| date("as_of", d)).transpose()?;
    let standing = standing(&state, id).await?;
    let Some(as_of) = asked.or(standing.current) else {
        return Err(ApiError::NotFound("projection"));
    };
    projection(&state, id, as_of, standing)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("projection"))
}

/// The stored projection of `user` as of `as_of`, as answered.
async fn projection(
    state: &AppState,
    id: i64,
    as_of: NaiveDate,
    Standing { currency, current, .. }: Standing,
) -> Result<Option<Projection>, ApiError> {
    let row: Option<ProjectionRow> = sqlx::query_as(
        "SELECT as_of, opening, inflows, outflows, closing, lowest_balance, lowest_date, first_shortfall, threshold,
            computed_at, include_as_of, balance_date, entry_day, entry_item, entry_one_off, entry_name, entry_amount
         FROM cashflow_projections WHERE user_id = $1 AND as_of = $2",
    )
    .bind(id)
    .bind(as_of)
    .fetch_optional(&state.db)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let mut days = r
        .closing
        .iter()
        .enumerate()
        .map(|(i, c)| Day {
            date: r.as_of + Days::new(i as u64),
            // The table's CHECK keeps the three arrays the same length.
            inflow: r.inflows.get(i).copied().unwrap_or(0),
            outflow: r.outflows.get(i).copied().unwrap_or(0),
            closing: *c,
            items: Vec::new(),
        })
        .collect::<Vec<_>>();
    // The writer fills the five entry arrays together; `zip` stops at the shortest regardless.
    let entries = r
        .entry_day
        .iter()
        .zip(&r.entry_item)
        .zip(&r.entry_one_off)
        .zip(r.entry_name)
        .zip(&r.entry_amount);
    for ((((day, id), one_off), name), amount) in entries {
        if let Some(d) = usize::try_from(*day).ok().and_then(|d| days.get_mut(d)) {
            d.items.push(DayItem {
                id: *id,
                source: if *one_off { "scheduled" } else { "recurring" },
                name,
                amount: *amount,
            });
        }
    }
    let first_below_zero = days.iter().find(|d| d.closing < 0).map(|d| d.date);
    Ok(Some(Projection {
        user_id: id,
        as_of: r.as_of,
        role: if Some(r.as_of) == current { "current" } else { "what_if" },
        currency,
        include_as_of: r.include_as_of,
        balance_date: r.balance_date,
        opening: r.opening,
        lowest_balance: r.lowest_balance,
        lowest_date: r.lowest_date,
        shortfall: r.first_shortfall.map(|date| Shortfall {
            date,
            threshold: r.threshold,
        }),
        first_below_zero,
        computed_at: r.computed_at,
        days,
    }))
}

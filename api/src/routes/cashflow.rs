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
use crate::{
    AppState,
    error::ApiError,
    openapi::{Accepted, Errors},
};

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
}

/// Project a user's balance now (scope `jobs:write`): queues `cashflow.project`.
#[utoipa::path(
    post, path = "/v1/users/{id}/cashflow/refresh", tag = "cashflow",
    params(("id" = i64, Path, minimum = 1, description = "The user id")),
    request_body(content = Option<RefreshRequest>, description = "May be empty"),
    responses((status = 202, description = "The projection job is queued", body = Accepted), Errors),
    security(("bearer" = ["jobs:write"]))
)]
pub async fn refresh(
    State(state): State<AppState>,
    UserRoute { caller, user: id, .. }: UserRoute<JobsWrite>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let req: RefreshRequest = super::body::json(body, true)?;
    let payload = ProjectPayload {
        user_id: id,
        as_of: req.as_of.as_deref().map(|d| date("as_of", d)).transpose()?,
        horizon_days: req.horizon_days,
    };
    // The body's fields are the payload's: a refused one is named as sent.
    Project::check(&payload)?;
    let job = Project::job(&payload);
    let checked = super::enqueue::Checked {
        spec: KindSpec::of::<Project>(),
        job: job.into_inner(),
    };
    let job_id = super::enqueue::push_one(&state, &caller, checked).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { id: job_id })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    /// The projection made as of this date (YYYY-MM-DD); the newest when absent.
    #[param(format = Date)]
    as_of: Option<String>,
}

/// A user's projected balance, day by day, in minor units of the user's currency.
#[derive(Serialize, ToSchema)]
pub struct Projection {
    user_id: i64,
    as_of: NaiveDate,
    opening: i64,
    lowest_balance: i64,
    lowest_date: NaiveDate,
    /// The first day below the user's threshold, if any.
    shortfall: Option<Shortfall>,
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
    inflow: Option<i64>,
    outflow: Option<i64>,
    closing: i64,
}

type ProjectionRow = (
    NaiveDate,
    i64,
    Vec<i64>,
    Vec<i64>,
    Vec<i64>,
    i64,
    NaiveDate,
    Option<NaiveDate>,
    i64,
    DateTime<Utc>,
);

/// The newest projection (or the one for `?as_of=`), day by day (scope `jobs:read`).
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
    let as_of = q.as_of.as_deref().map(|d| date("as_of", d)).transpose()?;
    let row: Option<ProjectionRow> = sqlx::query_as(
        "SELECT as_of, opening, inflows, outflows, closing, lowest_balance, lowest_date, first_shortfall, threshold, computed_at
         FROM cashflow_projections WHERE user_id = $1 AND ($2::date IS NULL OR as_of = $2)
         ORDER BY as_of DESC LIMIT 1",
    )
    .bind(id)
    .bind(as_of)
    .fetch_optional(&state.db)
    .await?;
    let Some((as_of, opening, inflows, outflows, closing, lowest, lowest_date, shortfall, threshold, computed_at)) =
        row
    else {
        return Err(ApiError::NotFound("projection"));
    };
    let days = closing
        .iter()
        .enumerate()
        .map(|(i, c)| Day {
            date: as_of + Days::new(i as u64),
            inflow: inflows.get(i).copied(),
            outflow: outflows.get(i).copied(),
            closing: *c,
        })
        .collect();
    Ok(Json(Projection {
        user_id: id,
        as_of,
        opening,
        lowest_balance: lowest,
        lowest_date,
        shortfall: shortfall.map(|date| Shortfall { date, threshold }),
        computed_at,
        days,
    }))
}

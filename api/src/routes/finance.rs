//! A user's finance data, the projection's inputs, for apps that own the truth:
//! `PUT /v1/users/{id}/finance` creates the user or replaces everything about them in one
//! transaction, then queues a projection; `GET` reads it back. Money is integer minor units.
use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
};
use chrono::NaiveDate;
use nightshift_catalog::{
    Kind, KindSpec,
    cashflow::{self, Project, ProjectPayload},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    reminders::CADENCES,
    user::{FinanceRead, FinanceWrite, UserRoute, UserTarget},
};
use crate::{AppState, error::ApiError, openapi::Errors};

/// The body of a `PUT`: room for the item limits below at realistic name lengths.
pub const MAX_FINANCE_BYTES: usize = 1024 * 1024;
/// Per user: far above any household, low enough that one request stays one quick statement.
const MAX_ACCOUNTS: usize = 100;
const MAX_RECURRING: usize = 1_000;
const MAX_SCHEDULED: usize = 5_000;
const AMOUNT: std::ops::RangeInclusive<i64> = -1_000_000_000..=1_000_000_000;
const BALANCE: std::ops::RangeInclusive<i64> = -1_000_000_000_000..=1_000_000_000_000;

/// Everything the projection knows of a user.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Finance {
    /// Where low-balance alerts go.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// An IANA time zone (`Europe/Paris`); UTC when absent. "Today" is the user's today.
    #[serde(default = "utc")]
    time_zone: String,
    /// ISO 4217 code, three capital letters; EUR when absent.
    #[serde(default = "eur")]
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: String,
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

fn utc() -> String {
    "UTC".into()
}

fn eur() -> String {
    "EUR".into()
}

#[derive(Debug, Deserialize, Serialize, ToSchema, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
pub(crate) struct Account {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// The balance today, minor units.
    #[schema(minimum = -1_000_000_000_000i64, maximum = 1_000_000_000_000i64)]
    balance: i64,
}

#[derive(Debug, Deserialize, Serialize, ToSchema, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecurringItem {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Minor units, not 0: income > 0, a bill < 0.
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    amount: i64,
    /// weekly, biweekly, every_n_weeks, semi_monthly, monthly, monthly_last_day or yearly.
    #[schema(pattern = "^(weekly|biweekly|every_n_weeks|semi_monthly|monthly|monthly_last_day|yearly)$")]
    cadence: String,
    /// The first occurrence (1970-01-01 to 2199-12-31); monthly items fall on its day,
    /// clamped to short months.
    anchor_date: NaiveDate,
    /// No occurrence after this date.
    #[serde(default)]
    end_date: Option<NaiveDate>,
    /// every_n_weeks only: the period, 1 to 52 weeks.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 52)]
    interval_weeks: Option<i32>,
    /// semi_monthly only: two increasing days of the month, 1 to 31.
    #[serde(default)]
    days_of_month: Option<Vec<i32>>,
    /// Where a date on a weekend moves: `previous` (Friday), `next` (Monday) or `none`.
    /// When absent, income moves to the previous business day and a bill to the next.
    #[serde(default)]
    #[schema(pattern = "^(none|previous|next)$")]
    business_day: Option<String>,
    /// Stop after this many occurrences (1 to 100,000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100_000)]
    occurrences: Option<i32>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scheduled {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Minor units, not 0.
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    amount: i64,
    /// 1970-01-01 to 2199-12-31.
    date: NaiveDate,
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

fn name(field: String, name: &str) -> Result<(), ApiError> {
    if (1..=200).contains(&name.trim().chars().count()) {
        Ok(())
    } else {
        Err(ApiError::invalid(field, "must be 1 to 200 characters"))
    }
}

fn in_range(field: String, value: i64, range: std::ops::RangeInclusive<i64>) -> Result<(), ApiError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("must be within {} to {} (minor units)", range.start(), range.end()),
        ))
    }
}

fn amount(field: String, value: i64) -> Result<(), ApiError> {
    if value == 0 {
        return Err(ApiError::invalid(field, "must not be 0"));
    }
    in_range(field, value, AMOUNT)
}

fn date(field: String, d: NaiveDate) -> Result<(), ApiError> {
    cashflow::check_date(&field, d).map(|_| ()).map_err(ApiError::from)
}

fn count(field: &str, n: usize, max: usize) -> Result<(), ApiError> {
    if n <= max {
        Ok(())
    } else {
        Err(ApiError::invalid(field, format!("at most {max} items, got {n}")))
    }
}

impl RecurringItem {
    /// The rules the engine relies on, field by field; fills in the business-day default.
    fn check(&mut self, at: &str) -> Result<(), ApiError> {
        let field = |f: &str| format!("{at}.{f}");
        name(field("name"), &self.name)?;
        amount(field("amount"), self.amount)?;
        if !CADENCES.contains(&self.cadence.as_str()) {
            return Err(ApiError::invalid(
                field("cadence"),
                format!("`{}` is not one of {}", self.cadence, CADENCES.join(", ")),
            ));
        }
        date(field("anchor_date"), self.anchor_date)?;
        if let Some(end) = self.end_date {
            date(field("end_date"), end)?;
            if end < self.anchor_date {
                return Err(ApiError::invalid(field("end_date"), "must not be before anchor_date"));
            }
        }
        match (self.cadence.as_str(), self.interval_weeks) {
            ("every_n_weeks", Some(w)) if (1..=52).contains(&w) => {}
            ("every_n_weeks", _) => {
                return Err(ApiError::invalid(
                    field("interval_weeks"),
                    "every_n_weeks needs interval_weeks from 1 to 52",
                ));
            }
            (_, Some(_)) => {
                return Err(ApiError::invalid(
                    field("interval_weeks"),
                    "only an every_n_weeks item has interval_weeks",
                ));
            }
            (_, None) => {}
        }
        let two_days = |d: &[i32]| matches!(d, [a, b] if (1..=31).contains(a) && (1..=31).contains(b) && a < b);
        match (self.cadence.as_str(), self.days_of_month.as_deref()) {
            ("semi_monthly", Some(d)) if two_days(d) => {}
            ("semi_monthly", _) => {
                return Err(ApiError::invalid(
                    field("days_of_month"),
                    "semi_monthly needs two increasing days of the month, 1 to 31",
                ));
            }
            (_, Some(_)) => {
                return Err(ApiError::invalid(
                    field("days_of_month"),
                    "only a semi_monthly item has days_of_month (a monthly item falls on its anchor's day)",
                ));
            }
            (_, None) => {}
        }
        if self.occurrences.is_some_and(|n| !(1..=100_000).contains(&n)) {
            return Err(ApiError::invalid(field("occurrences"), "must be 1 to 100,000"));
        }
        let rule = self
            .business_day
            .get_or_insert_with(|| if self.amount > 0 { "previous" } else { "next" }.into());
        if !["none", "previous", "next"].contains(&rule.as_str()) {
            return Err(ApiError::invalid(
                field("business_day"),
                "must be none, previous or next",
            ));
        }
        Ok(())
    }
}

impl Finance {
    fn check(&mut self) -> Result<(), ApiError> {
        let email = self.email.trim();
        if email.len() > 254 || email.parse::<lettre::Address>().is_err() {
            return Err(ApiError::invalid("email", "is not an e-mail address"));
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ApiError::invalid(
                "time_zone",
                "is not an IANA time zone (e.g. Europe/Paris)",
            ));
        }
        if !(self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(ApiError::invalid("currency", "must be an ISO 4217 code such as EUR"));
        }
        in_range("low_balance_threshold".into(), self.low_balance_threshold, AMOUNT)?;
        count("accounts", self.accounts.len(), MAX_ACCOUNTS)?;
        count("recurring", self.recurring.len(), MAX_RECURRING)?;
        count("scheduled", self.scheduled.len(), MAX_SCHEDULED)?;
        for (i, a) in self.accounts.iter().enumerate() {
            name(format!("accounts[{i}].name"), &a.name)?;
            in_range(format!("accounts[{i}].balance"), a.balance, BALANCE)?;
        }
        for (i, r) in self.recurring.iter_mut().enumerate() {
            r.check(&format!("recurring[{i}]"))?;
        }
        for (i, s) in self.scheduled.iter().enumerate() {
            name(format!("scheduled[{i}].name"), &s.name)?;
            amount(format!("scheduled[{i}].amount"), s.amount)?;
            date(format!("scheduled[{i}].date"), s.date)?;
        }
        Ok(())
    }
}

/// Replace a user's finance data (scope `finance:write`).
///
/// Creates the user if needed; replaces their accounts, recurring items and scheduled
/// transactions with these, all or nothing; then queues a projection. Idempotent: the same
/// body twice leaves the same data. A user-confined token may write only its own user.
#[utoipa::path(
    put, path = "/v1/users/{id}/finance", tag = "cashflow",
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
    f.check()?;
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "INSERT INTO users (id, email, time_zone, currency, low_balance_threshold) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, time_zone = EXCLUDED.time_zone,
            currency = EXCLUDED.currency, low_balance_threshold = EXCLUDED.low_balance_threshold",
    )
    .bind(user)
    .bind(f.email.trim())
    .bind(&f.time_zone)
    .bind(&f.currency)
    .bind(f.low_balance_threshold)
    .execute(&mut *tx)
    .await?;
    for table in ["accounts", "recurring_items", "scheduled_transactions"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
            .bind(user)
            .execute(&mut *tx)
            .await?;
    }
    let names = |v: Vec<&str>| v.into_iter().map(|s| s.trim().to_string()).collect::<Vec<_>>();
    sqlx::query("INSERT INTO accounts (user_id, name, balance) SELECT $1, * FROM UNNEST($2::text[], $3::bigint[])")
        .bind(user)
        .bind(names(f.accounts.iter().map(|a| a.name.as_str()).collect()))
        .bind(f.accounts.iter().map(|a| a.balance).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    let r = &f.recurring;
    // days_of_month as two columns: PostgreSQL arrays cannot hold arrays of varying presence.
    let day = |i: usize| {
        r.iter()
            .map(move |x| x.days_of_month.as_ref().map(|d| d[i]))
            .collect::<Vec<_>>()
    };
    sqlx::query(
        "INSERT INTO recurring_items (user_id, name, amount, cadence, anchor_date, end_date, interval_weeks,
            days_of_month, business_day, occurrences)
         SELECT $1, u.name, u.amount, u.cadence, u.anchor, u.end_date, u.weeks,
            CASE WHEN u.d1 IS NULL THEN NULL ELSE ARRAY[u.d1, u.d2] END, u.rule, u.n
         FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::date[], $6::date[], $7::int[], $8::int[], $9::int[],
                     $10::text[], $11::int[])
            AS u (name, amount, cadence, anchor, end_date, weeks, d1, d2, rule, n)",
    )
    .bind(user)
    .bind(names(r.iter().map(|x| x.name.as_str()).collect()))
    .bind(r.iter().map(|x| x.amount).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.cadence.as_str()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.anchor_date).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.end_date).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.interval_weeks).collect::<Vec<_>>())
    .bind(day(0))
    .bind(day(1))
    .bind(r.iter().map(|x| x.business_day.as_deref()).collect::<Vec<_>>())
    .bind(r.iter().map(|x| x.occurrences).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    let s = &f.scheduled;
    sqlx::query(
        "INSERT INTO scheduled_transactions (user_id, name, amount, date)
         SELECT $1, * FROM UNNEST($2::text[], $3::bigint[], $4::date[])",
    )
    .bind(user)
    .bind(names(s.iter().map(|x| x.name.as_str()).collect()))
    .bind(s.iter().map(|x| x.amount).collect::<Vec<_>>())
    .bind(s.iter().map(|x| x.date).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // Queued after the commit, so the projection reads the new data. Should the queue refuse
    // (Redis down, a rate limit), the data is stored and the same PUT again queues it.
    let job = Project::job(&ProjectPayload {
        user_id: user,
        as_of: None,
        horizon_days: None,
    });
    let checked = super::enqueue::Checked {
        spec: KindSpec::of::<Project>(),
        job: job.into_inner(),
    };
    let refresh_job = super::enqueue::push_one(&state, &caller, checked).await?;
    Ok(Json(Stored {
        user_id: user,
        accounts: f.accounts.len(),
        recurring: f.recurring.len(),
        scheduled: f.scheduled.len(),
        refresh_job,
    }))
}

/// A user's finance data, as the last `PUT` left it (scope `finance:read`).
#[utoipa::path(
    get, path = "/v1/users/{id}/finance", tag = "cashflow",
    params(("id" = i64, Path, minimum = 1, description = "The user id")),
    responses((status = 200, description = "The user's finance data", body = Finance), Errors),
    security(("bearer" = ["finance:read"]))
)]
pub async fn read(
    State(state): State<AppState>,
    UserRoute { user, .. }: UserRoute<FinanceRead>,
) -> Result<Json<Finance>, ApiError> {
    let (email, time_zone, currency, low_balance_threshold): (String, String, String, i64) =
        sqlx::query_as("SELECT email, time_zone, currency::text, low_balance_threshold FROM users WHERE id = $1")
            .bind(user)
            .fetch_one(&state.db)
            .await?;
    let accounts = sqlx::query_as("SELECT name, balance FROM accounts WHERE user_id = $1 ORDER BY id")
        .bind(user)
        .fetch_all(&state.db)
        .await?;
    let recurring = sqlx::query_as(
        "SELECT name, amount, cadence, anchor_date, end_date, interval_weeks, days_of_month, business_day, occurrences
         FROM recurring_items WHERE user_id = $1 ORDER BY id",
    )
    .bind(user)
    .fetch_all(&state.db)
    .await?;
    let scheduled =
        sqlx::query_as("SELECT name, amount, date FROM scheduled_transactions WHERE user_id = $1 ORDER BY date, id")
            .bind(user)
            .fetch_all(&state.db)
            .await?;
    Ok(Json(Finance {
        email,
        time_zone,
        currency,
        low_balance_threshold,
        accounts,
        recurring,
        scheduled,
    }))
}

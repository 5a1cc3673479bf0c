// Over 400 lines: three item types, each with its field rules and its one insert statement, side by side.
//! The finance data as the API takes and shows it: each type with the rules a value must meet
//! (checked field by field, so a 422 names the field) and the one statement that stores a
//! list of them. Money is integer minor units; dates lie in the catalog's range.
use chrono::NaiveDate;
use nightshift_catalog::cashflow;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sqlx::{PgConnection, postgres::PgRow};
use utoipa::ToSchema;

use super::super::cadence;
use crate::error::ApiError;

const AMOUNT: std::ops::RangeInclusive<i64> = -1_000_000_000..=1_000_000_000;
const BALANCE: std::ops::RangeInclusive<i64> = -1_000_000_000_000..=1_000_000_000_000;

/// Who the user is to the projection: where alerts go, their calendar and currency.
#[derive(Debug, Deserialize, Serialize, ToSchema, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    /// Where low-balance alerts go.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// An IANA time zone (`Europe/Paris`); UTC when absent. "Today" is the user's today.
    #[serde(default = "utc")]
    pub time_zone: String,
    /// ISO 4217 code, three capital letters; EUR when absent.
    #[serde(default = "eur")]
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// A projected balance below this (minor units) is a shortfall; 0 when absent.
    #[serde(default)]
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    pub low_balance_threshold: i64,
}

fn utc() -> String {
    "UTC".into()
}

fn eur() -> String {
    "EUR".into()
}

impl Profile {
    pub fn check(&mut self) -> Result<(), ApiError> {
        self.email = self.email.trim().to_string();
        if self.email.len() > 254 || self.email.parse::<lettre::Address>().is_err() {
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
        in_range("low_balance_threshold".into(), self.low_balance_threshold, AMOUNT)
    }

    /// Creates the user or updates these fields, leaving their items alone.
    pub async fn upsert(&self, db: &mut PgConnection, user: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO users (id, email, time_zone, currency, low_balance_threshold) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, time_zone = EXCLUDED.time_zone,
                currency = EXCLUDED.currency, low_balance_threshold = EXCLUDED.low_balance_threshold",
        )
        .bind(user)
        .bind(&self.email)
        .bind(&self.time_zone)
        .bind(&self.currency)
        .bind(self.low_balance_threshold)
        .execute(db)
        .await?;
        Ok(())
    }
}

/// An account, a recurring item or a one-off transaction: how it is checked, listed and
/// stored, so one set of routes serves all three.
pub(crate) trait Item:
    DeserializeOwned + Serialize + for<'r> sqlx::FromRow<'r, PgRow> + Send + Sync + Unpin + 'static
{
    /// The table, also the path segment's noun in messages.
    const TABLE: &'static str;
    /// What a 404 calls a missing one.
    const WHAT: &'static str;
    /// The most one user may have.
    const MAX: usize;
    /// The columns shown, `id` first.
    const COLUMNS: &'static str;
    const ORDER: &'static str;
    fn id(&self) -> Option<i64>;
    fn set_id(&mut self, id: Option<i64>);
    /// The rules the engine relies on, field by field, named under `at`; fills in defaults.
    fn check(&mut self, at: &str) -> Result<(), ApiError>;
    /// Stores `items` for `user` in one statement, each under its own id when it has one (else
    /// a new one), and returns their ids in order.
    fn insert(
        db: &mut PgConnection,
        user: i64,
        items: &[Self],
    ) -> impl Future<Output = Result<Vec<i64>, sqlx::Error>> + Send;
}

/// `Item::id` and `Item::set_id` for a type whose `id: Option<i64>` field is the id.
macro_rules! id_field {
    () => {
        fn id(&self) -> Option<i64> {
            self.id
        }

        fn set_id(&mut self, id: Option<i64>) {
            self.id = id;
        }
    };
}

/// The ids to insert under: a row's own, or the table's next.
fn ids<T: Item>(items: &[T]) -> Vec<Option<i64>> {
    items.iter().map(Item::id).collect()
}

fn names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    names.map(|s| s.trim().to_string()).collect()
}

#[derive(Debug, Deserialize, Serialize, ToSchema, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
pub(crate) struct Account {
    /// Assigned by the server. In a bulk `PUT`, an id the user already has keeps the account
    /// under it.
    #[serde(default)]
    id: Option<i64>,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Minor units.
    #[schema(minimum = -1_000_000_000_000i64, maximum = 1_000_000_000_000i64)]
    balance: i64,
    /// The day the balance was read (its items are in it or not as a refresh's
    /// `include_as_of` says). A projection from another day rolls it by the items in between.
    /// Without it, the balance stands for whatever day is projected. Accounts are taken as
    /// read together, on the newest of their dates: items belong to the user, not an account.
    #[serde(default)]
    balance_date: Option<NaiveDate>,
}

impl Item for Account {
    const TABLE: &'static str = "accounts";
    const WHAT: &'static str = "account";
    const MAX: usize = 100;
    const COLUMNS: &'static str = "id, name, balance, balance_date";
    const ORDER: &'static str = "id";

    id_field!();

    fn check(&mut self, at: &str) -> Result<(), ApiError> {
        name(format!("{at}name"), &self.name)?;
        in_range(format!("{at}balance"), self.balance, BALANCE)?;
        if let Some(d) = self.balance_date {
            date(format!("{at}balance_date"), d)?;
        }
        Ok(())
    }

    async fn insert(db: &mut PgConnection, user: i64, items: &[Self]) -> Result<Vec<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "INSERT INTO accounts (id, user_id, name, balance, balance_date)
             SELECT COALESCE(u.id, nextval(pg_get_serial_sequence('accounts', 'id'))), $1, u.name, u.balance, u.day
             FROM UNNEST($2::bigint[], $3::text[], $4::bigint[], $5::date[]) WITH ORDINALITY AS u (id, name, balance, day, n)
             ORDER BY u.n RETURNING id",
        )
        .bind(user)
        .bind(ids(items))
        .bind(names(items.iter().map(|a| a.name.as_str())))
        .bind(items.iter().map(|a| a.balance).collect::<Vec<_>>())
        .bind(items.iter().map(|a| a.balance_date).collect::<Vec<_>>())
        .fetch_all(db)
        .await
    }
}

/// Income (amount > 0) or a bill (amount < 0) that repeats.
#[derive(Debug, Deserialize, Serialize, ToSchema, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecurringItem {
    /// Assigned by the server. In a bulk `PUT`, an id the user already has keeps the item
    /// under it.
    #[serde(default)]
    id: Option<i64>,
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

impl Item for RecurringItem {
    const TABLE: &'static str = "recurring_items";
    const WHAT: &'static str = "recurring item";
    const MAX: usize = 1_000;
    const COLUMNS: &'static str =
        "id, name, amount, cadence, anchor_date, end_date, interval_weeks, days_of_month, business_day, occurrences";
    const ORDER: &'static str = "id";

    id_field!();

    fn check(&mut self, at: &str) -> Result<(), ApiError> {
        let field = |f: &str| format!("{at}{f}");
        name(field("name"), &self.name)?;
        amount(field("amount"), self.amount)?;
        cadence::check(at, &self.cadence, self.interval_weeks, self.days_of_month.as_deref())?;
        date(field("anchor_date"), self.anchor_date)?;
        if let Some(end) = self.end_date {
            date(field("end_date"), end)?;
            if end < self.anchor_date {
                return Err(ApiError::invalid(field("end_date"), "must not be before anchor_date"));
            }
        }
        // What a cadence does not use is refused rather than stored unread.
        if self.interval_weeks.is_some() && self.cadence != "every_n_weeks" {
            return Err(ApiError::invalid(
                field("interval_weeks"),
                "only an every_n_weeks item has interval_weeks",
            ));
        }
        if self.days_of_month.is_some() && self.cadence != "semi_monthly" {
            return Err(ApiError::invalid(
                field("days_of_month"),
                "only a semi_monthly item has days_of_month (a monthly item falls on its anchor's day)",
            ));
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

    async fn insert(db: &mut PgConnection, user: i64, r: &[Self]) -> Result<Vec<i64>, sqlx::Error> {
        // days_of_month as two columns: PostgreSQL arrays cannot hold arrays of varying presence.
        let day = |i: usize| {
            r.iter()
                .map(move |x| x.days_of_month.as_ref().map(|d| d[i]))
                .collect::<Vec<_>>()
        };
        sqlx::query_scalar(
            "INSERT INTO recurring_items (id, user_id, name, amount, cadence, anchor_date, end_date, interval_weeks,
                days_of_month, business_day, occurrences)
             SELECT COALESCE(u.id, nextval(pg_get_serial_sequence('recurring_items', 'id'))), $1, u.name, u.amount,
                u.cadence, u.anchor, u.end_date, u.weeks, CASE WHEN u.d1 IS NULL THEN NULL ELSE ARRAY[u.d1, u.d2] END,
                u.rule, u.n
             FROM UNNEST($2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::date[], $7::date[], $8::int[],
                         $9::int[], $10::int[], $11::text[], $12::int[]) WITH ORDINALITY
                AS u (id, name, amount, cadence, anchor, end_date, weeks, d1, d2, rule, n, ord)
             ORDER BY u.ord RETURNING id",
        )
        .bind(user)
        .bind(ids(r))
        .bind(names(r.iter().map(|x| x.name.as_str())))
        .bind(r.iter().map(|x| x.amount).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.cadence.as_str()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.anchor_date).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.end_date).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.interval_weeks).collect::<Vec<_>>())
        .bind(day(0))
        .bind(day(1))
        .bind(r.iter().map(|x| x.business_day.as_deref()).collect::<Vec<_>>())
        .bind(r.iter().map(|x| x.occurrences).collect::<Vec<_>>())
        .fetch_all(db)
        .await
    }
}

/// A one-off transaction on a date.
#[derive(Debug, Deserialize, Serialize, ToSchema, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scheduled {
    /// Assigned by the server. In a bulk `PUT`, an id the user already has keeps the
    /// transaction under it.
    #[serde(default)]
    id: Option<i64>,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Minor units, not 0.
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    amount: i64,
    /// 1970-01-01 to 2199-12-31.
    date: NaiveDate,
}

impl Item for Scheduled {
    const TABLE: &'static str = "scheduled_transactions";
    const WHAT: &'static str = "scheduled transaction";
    const MAX: usize = 5_000;
    const COLUMNS: &'static str = "id, name, amount, date";
    const ORDER: &'static str = "date, id";

    id_field!();

    fn check(&mut self, at: &str) -> Result<(), ApiError> {
        name(format!("{at}name"), &self.name)?;
        amount(format!("{at}amount"), self.amount)?;
        date(format!("{at}date"), self.date)
    }

    async fn insert(db: &mut PgConnection, user: i64, s: &[Self]) -> Result<Vec<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "INSERT INTO scheduled_transactions (id, user_id, name, amount, date)
             SELECT COALESCE(u.id, nextval(pg_get_serial_sequence('scheduled_transactions', 'id'))), $1, u.name,
                u.amount, u.date
             FROM UNNEST($2::bigint[], $3::text[], $4::bigint[], $5::date[]) WITH ORDINALITY AS u (id, name, amount, date, n)
             ORDER BY u.n RETURNING id",
        )
        .bind(user)
        .bind(ids(s))
        .bind(names(s.iter().map(|x| x.name.as_str())))
        .bind(s.iter().map(|x| x.amount).collect::<Vec<_>>())
        .bind(s.iter().map(|x| x.date).collect::<Vec<_>>())
        .fetch_all(db)
        .await
    }
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

/// Checks a list of items under `field` (`field[i].name`), and that it is within the limit
/// and its ids are distinct.
pub fn check_all<T: Item>(field: &str, items: &mut [T]) -> Result<(), ApiError> {
    if items.len() > T::MAX {
        return Err(ApiError::invalid(
            field,
            format!("at most {} items, got {}", T::MAX, items.len()),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter_mut().enumerate() {
        item.check(&format!("{field}[{i}]."))?;
        if let Some(id) = item.id()
            && !seen.insert(id)
        {
            return Err(ApiError::invalid(format!("{field}[{i}].id"), "appears twice"));
        }
    }
    Ok(())
}

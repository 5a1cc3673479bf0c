//! Loading users' inputs and storing their projections: one round trip each way for any
//! number of users, so the nightly run costs two statements per few hundred users.
use chrono::NaiveDate;
use chrono_tz::Tz;
use sqlx::{PgPool, Postgres, QueryBuilder, types::Json};

use super::engine::{Balances, BusinessDay, Cadence, OneOff, Projection, Recurring, Source};

pub struct Inputs {
    pub user_id: i64,
    /// The date asked for, if any (else the user's today).
    pub as_of: Option<NaiveDate>,
    pub balances: Balances,
    pub threshold: i64,
    pub time_zone: Tz,
    pub items: Vec<Recurring>,
    pub one_offs: Vec<OneOff>,
    /// The id and name of each of `items` and of `one_offs`, in the same order.
    item_refs: Vec<(i64, String)>,
    one_off_refs: Vec<(i64, String)>,
}

type ItemRow = (
    i64,
    String,
    i64,
    String,
    NaiveDate,
    Option<NaiveDate>,
    Option<u32>,
    Option<Vec<u32>>,
    String,
    Option<u32>,
);

type UserRow = (
    i64,
    Option<NaiveDate>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<NaiveDate>,
    Json<Vec<ItemRow>>,
    Json<Vec<(i64, String, i64, NaiveDate)>>,
);

/// Everything the projections of `users` (id, as-of date or the user's today) need, in one
/// query; unknown users are left out. With `unprojected_only`, so are users who already have
/// a projection for the date asked (the nightly run's fence). Items are ordered by id so the
/// same rows always give the same projection.
pub async fn load(
    db: &PgPool,
    users: &[(i64, Option<NaiveDate>)],
    unprojected_only: bool,
) -> Result<Vec<Inputs>, sqlx::Error> {
    let rows: Vec<UserRow> = sqlx::query_as(
        "SELECT u.id, t.as_of, u.time_zone, u.low_balance_threshold, b.undated, b.dated, b.read,
            COALESCE((SELECT json_agg(json_build_array(id, name, amount, cadence, anchor_date, end_date,
                          interval_weeks, days_of_month, business_day, occurrences) ORDER BY id)
                      FROM recurring_items r WHERE r.user_id = u.id), '[]'),
            -- From the earlier of the projected day (the user's today is at most a day from
            -- UTC's) and the day the balances were read: the roll between them needs them.
            COALESCE((SELECT json_agg(json_build_array(id, name, amount, date) ORDER BY date, id)
                      FROM scheduled_transactions s
                      WHERE s.user_id = u.id AND s.date >= LEAST(COALESCE(t.as_of, CURRENT_DATE - 2), b.read)), '[]')
         FROM unnest($1::bigint[], $2::date[]) WITH ORDINALITY AS t (id, as_of, n)
         JOIN users u ON u.id = t.id
         CROSS JOIN LATERAL (
            SELECT (sum(balance) FILTER (WHERE balance_date IS NULL))::bigint AS undated,
                   (sum(balance) FILTER (WHERE balance_date IS NOT NULL))::bigint AS dated,
                   max(balance_date) AS read
            FROM accounts a WHERE a.user_id = u.id) b
         WHERE NOT $3 OR NOT EXISTS (SELECT 1 FROM cashflow_projections c WHERE c.user_id = u.id AND c.as_of = t.as_of)
         ORDER BY t.n",
    )
    .bind(users.iter().map(|u| u.0).collect::<Vec<_>>())
    .bind(users.iter().map(|u| u.1).collect::<Vec<_>>())
    .bind(unprojected_only)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(inputs).collect())
}

fn inputs((user_id, as_of, tz, threshold, undated, dated, read, Json(items), Json(one_offs)): UserRow) -> Inputs {
    let (items, item_refs) = items
        .into_iter()
        .filter_map(
            |(id, name, amount, cadence, anchor, end, interval, days, business_day, count)| {
                let item = Recurring {
                    amount,
                    cadence: Cadence::from_db(&cadence, interval, days.as_deref())?,
                    anchor,
                    end,
                    count,
                    business_day: match business_day.as_str() {
                        "previous" => BusinessDay::Previous,
                        "next" => BusinessDay::Next,
                        _ => BusinessDay::None,
                    },
                };
                Some((item, (id, name)))
            },
        )
        .unzip();
    let (one_offs, one_off_refs) = one_offs
        .into_iter()
        .map(|(id, name, amount, date)| (OneOff { amount, date }, (id, name)))
        .unzip();
    Inputs {
        user_id,
        as_of,
        balances: Balances {
            undated,
            dated: dated.zip(read),
        },
        threshold,
        // The column is free text; an unknown zone projects in UTC rather than not at all.
        time_zone: tz.parse().unwrap_or(Tz::UTC),
        items,
        one_offs,
        item_refs,
        one_off_refs,
    }
}

/// A projection ready to store, with what it assumed.
pub struct Row<'a> {
    pub inputs: &'a Inputs,
    pub projection: Projection,
    pub include_as_of: bool,
}

/// How a stored projection meets one already there for the same (user, as_of).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A refresh: replaces it if anything differs; an identical re-run writes nothing.
    Replace,
    /// The nightly run: the first one stays.
    Once,
}

/// The projections PostgreSQL takes in one statement: 17 parameters each, under its 65,535.
pub const MAX_ROWS: usize = 3_000;

/// Stores projections under (user, as_of) and records each new shortfall alert, in one
/// statement (one round trip, one transaction). Returns the users whose row was written and,
/// for each, whether a new shortfall alert was recorded.
pub async fn save(db: &PgPool, rows: &[Row<'_>], write: Write) -> Result<Vec<(i64, bool)>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: QueryBuilder<'_, Postgres> = QueryBuilder::new(
        "WITH projection AS (
            INSERT INTO cashflow_projections AS c (user_id, as_of, opening, inflows, outflows, closing,
                lowest_balance, lowest_date, first_shortfall, threshold, include_as_of, balance_date,
                entry_day, entry_item, entry_one_off, entry_name, entry_amount) ",
    );
    q.push_values(rows, |mut b, r| {
        let p = &r.projection;
        let column = |f: fn(&super::engine::Day) -> i64| p.days.iter().map(f).collect::<Vec<i64>>();
        let refs = |s: Source| match s {
            Source::Recurring(i) => (&r.inputs.item_refs[i], false),
            Source::OneOff(i) => (&r.inputs.one_off_refs[i], true),
        };
        let entries = p.entries.iter().map(|e| (e, refs(e.source)));
        b.push_bind(r.inputs.user_id)
            .push_bind(p.as_of)
            .push_bind(p.opening)
            .push_bind(column(|d| d.inflow))
            .push_bind(column(|d| d.outflow))
            .push_bind(column(|d| d.closing))
            .push_bind(p.lowest_balance)
            .push_bind(p.lowest_date)
            .push_bind(p.first_shortfall)
            .push_bind(r.inputs.threshold)
            .push_bind(r.include_as_of)
            .push_bind(r.inputs.balances.dated.map(|(_, read)| read))
            .push_bind(entries.clone().map(|(e, _)| e.day as i32).collect::<Vec<_>>())
            .push_bind(entries.clone().map(|(_, ((id, _), _))| *id).collect::<Vec<_>>())
            .push_bind(entries.clone().map(|(_, (_, one_off))| one_off).collect::<Vec<_>>())
            .push_bind(
                entries
                    .clone()
                    .map(|(_, ((_, name), _))| name.clone())
                    .collect::<Vec<_>>(),
            )
            .push_bind(entries.map(|(e, _)| e.amount).collect::<Vec<_>>());
    });
    q.push(match write {
        Write::Once => " ON CONFLICT (user_id, as_of) DO NOTHING",
        Write::Replace => {
            " ON CONFLICT (user_id, as_of) DO UPDATE SET opening = EXCLUDED.opening, inflows = EXCLUDED.inflows,
                outflows = EXCLUDED.outflows, closing = EXCLUDED.closing, lowest_balance = EXCLUDED.lowest_balance,
                lowest_date = EXCLUDED.lowest_date, first_shortfall = EXCLUDED.first_shortfall,
                threshold = EXCLUDED.threshold, include_as_of = EXCLUDED.include_as_of,
                balance_date = EXCLUDED.balance_date, entry_day = EXCLUDED.entry_day, entry_item = EXCLUDED.entry_item,
                entry_one_off = EXCLUDED.entry_one_off, entry_name = EXCLUDED.entry_name,
                entry_amount = EXCLUDED.entry_amount, computed_at = now()
            WHERE (c.opening, c.inflows, c.outflows, c.closing, c.threshold, c.include_as_of, c.balance_date,
                   c.entry_item, c.entry_name)
                IS DISTINCT FROM (EXCLUDED.opening, EXCLUDED.inflows, EXCLUDED.outflows, EXCLUDED.closing,
                   EXCLUDED.threshold, EXCLUDED.include_as_of, EXCLUDED.balance_date, EXCLUDED.entry_item,
                   EXCLUDED.entry_name)"
        }
    });
    q.push(
        " RETURNING user_id, as_of, first_shortfall, closing, threshold
         ), alert AS (
            INSERT INTO shortfall_alerts (user_id, shortfall_date, detected_as_of, projected_balance, threshold)
            SELECT user_id, first_shortfall, as_of, closing[(first_shortfall - as_of) + 1], threshold
            FROM projection WHERE first_shortfall IS NOT NULL
            ON CONFLICT DO NOTHING RETURNING user_id
         )
         SELECT p.user_id, EXISTS (SELECT 1 FROM alert a WHERE a.user_id = p.user_id) FROM projection p",
    );
    q.build_query_as().fetch_all(db).await
}

/// A low-balance e-mail a stored projection calls for.
#[derive(sqlx::FromRow)]
pub struct Alert {
    pub user_id: i64,
    pub date: NaiveDate,
    pub balance: i64,
    pub threshold: i64,
    pub address: String,
    pub name: String,
    pub currency: String,
}

/// The low-balance e-mails the stored projections of `users` (id, as-of date, today) call for
/// and that are not out yet, for those that are the user's current projection (the newest as
/// of a day up to their today).
pub async fn alerts_owed(db: &PgPool, users: &[(i64, NaiveDate, NaiveDate)]) -> Result<Vec<Alert>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.user_id, c.first_shortfall AS date, c.closing[(c.first_shortfall - c.as_of) + 1] AS balance,
            c.threshold, u.email AS address, coalesce(u.name, split_part(u.email, '@', 1)) AS name,
            u.currency::text AS currency
         FROM unnest($1::bigint[], $2::date[], $3::date[]) AS t (id, as_of, today)
         JOIN cashflow_projections c ON c.user_id = t.id AND c.as_of = t.as_of
         JOIN users u ON u.id = c.user_id
         WHERE c.first_shortfall IS NOT NULL AND c.as_of <= t.today
           AND NOT EXISTS (
            SELECT 1 FROM cashflow_projections newer
            WHERE newer.user_id = c.user_id AND newer.as_of > c.as_of AND newer.as_of <= t.today)
           AND NOT EXISTS (
            SELECT 1 FROM email_outbox o
            WHERE o.message_key = 'low_balance:' || c.user_id || ':' || to_char(c.first_shortfall, 'YYYY-MM-DD')
              AND o.state <> 'pending')",
    )
    .bind(users.iter().map(|u| u.0).collect::<Vec<_>>())
    .bind(users.iter().map(|u| u.1).collect::<Vec<_>>())
    .bind(users.iter().map(|u| u.2).collect::<Vec<_>>())
    .fetch_all(db)
    .await
}

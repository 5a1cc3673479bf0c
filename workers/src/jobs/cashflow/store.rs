//! Loading a user's inputs and storing a projection: two round trips per user.
use chrono::NaiveDate;
use chrono_tz::Tz;
use sqlx::{PgPool, types::Json};

use super::engine::{BusinessDay, Cadence, OneOff, Projection, Recurring};

pub struct Inputs {
    pub opening: i64,
    pub threshold: i64,
    pub time_zone: Tz,
    pub items: Vec<Recurring>,
    pub one_offs: Vec<OneOff>,
}

type ItemRow = (
    i64,
    String,
    NaiveDate,
    Option<NaiveDate>,
    Option<u32>,
    Option<Vec<u32>>,
    String,
    Option<u32>,
);

/// Everything one projection needs, in one query. Items are ordered by id so the same rows
/// always give the same projection.
pub async fn load(db: &PgPool, user_id: i64, as_of: Option<NaiveDate>) -> Result<Option<Inputs>, sqlx::Error> {
    let row: Option<(String, i64, i64, Json<Vec<ItemRow>>, Json<Vec<(i64, NaiveDate)>>)> = sqlx::query_as(
        "SELECT u.time_zone, u.low_balance_threshold,
            COALESCE((SELECT sum(balance) FROM accounts a WHERE a.user_id = u.id), 0)::bigint,
            COALESCE((SELECT json_agg(json_build_array(amount, cadence, anchor_date, end_date, interval_weeks,
                          days_of_month, business_day, occurrences) ORDER BY id)
                      FROM recurring_items r WHERE r.user_id = u.id), '[]'),
            COALESCE((SELECT json_agg(json_build_array(amount, date) ORDER BY date, id)
                      FROM scheduled_transactions s
                      WHERE s.user_id = u.id AND s.date >= COALESCE($2, CURRENT_DATE - 2)), '[]')
         FROM users u WHERE u.id = $1",
    )
    .bind(user_id)
    .bind(as_of)
    .fetch_optional(db)
    .await?;
    let Some((tz, threshold, opening, Json(items), Json(one_offs))) = row else {
        return Ok(None);
    };
    let items = items
        .into_iter()
        .filter_map(|(amount, name, anchor, end, interval, days, business_day, count)| {
            Some(Recurring {
                amount,
                cadence: Cadence::from_db(&name, interval, days.as_deref())?,
                anchor,
                end,
                count,
                business_day: match business_day.as_str() {
                    "previous" => BusinessDay::Previous,
                    "next" => BusinessDay::Next,
                    _ => BusinessDay::None,
                },
            })
        })
        .collect();
    Ok(Some(Inputs {
        opening,
        threshold,
        // The column is free text; an unknown zone projects in UTC rather than not at all.
        time_zone: tz.parse().unwrap_or(Tz::UTC),
        items,
        one_offs: one_offs
            .into_iter()
            .map(|(amount, date)| OneOff { amount, date })
            .collect(),
    }))
}

/// Stores the projection under (user, as_of) and records a shortfall alert, in one statement
/// (one round trip, one transaction). An identical re-run writes nothing; a changed one
/// replaces the row. Returns whether a new alert was recorded.
pub async fn save(db: &PgPool, user_id: i64, p: &Projection, threshold: i64) -> Result<bool, sqlx::Error> {
    let column = |f: fn(&super::engine::Day) -> i64| p.days.iter().map(f).collect::<Vec<i64>>();
    let shortfall_balance = p
        .first_shortfall
        .map(|d| p.days[(d - p.as_of).num_days() as usize].closing);
    let new_alerts: i64 = sqlx::query_scalar(
        "WITH projection AS (
            INSERT INTO cashflow_projections AS c (user_id, as_of, opening, inflows, outflows, closing,
                lowest_balance, lowest_date, first_shortfall, threshold)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (user_id, as_of) DO UPDATE SET opening = EXCLUDED.opening, inflows = EXCLUDED.inflows,
                outflows = EXCLUDED.outflows, closing = EXCLUDED.closing, lowest_balance = EXCLUDED.lowest_balance,
                lowest_date = EXCLUDED.lowest_date, first_shortfall = EXCLUDED.first_shortfall,
                threshold = EXCLUDED.threshold, computed_at = now()
            WHERE (c.opening, c.inflows, c.outflows, c.closing, c.threshold)
                IS DISTINCT FROM (EXCLUDED.opening, EXCLUDED.inflows, EXCLUDED.outflows, EXCLUDED.closing, EXCLUDED.threshold)
         ), alert AS (
            INSERT INTO shortfall_alerts (user_id, shortfall_date, detected_as_of, projected_balance, threshold)
            SELECT $1, $9, $2, $11, $10 WHERE $9::date IS NOT NULL
            ON CONFLICT DO NOTHING RETURNING 1
         )
         SELECT count(*) FROM alert",
    )
    .bind(user_id)
    .bind(p.as_of)
    .bind(p.opening)
    .bind(column(|d| d.inflow))
    .bind(column(|d| d.outflow))
    .bind(column(|d| d.closing))
    .bind(p.lowest_balance)
    .bind(p.lowest_date)
    .bind(p.first_shortfall)
    .bind(threshold)
    .bind(shortfall_balance)
    .fetch_one(db)
    .await?;
    Ok(new_alerts > 0)
}

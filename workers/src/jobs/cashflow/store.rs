use chrono_tz::Tz;
use sqlx::PgPool;

use super::engine::{Cadence, Projection, Recurring};

pub struct Inputs {
    pub opening: i64,
    pub threshold: i64,
    pub time_zone: Tz,
    pub items: Vec<Recurring>,
}

pub async fn load(db: &PgPool, user_id: i64) -> Result<Option<Inputs>, sqlx::Error> {
    let Some((tz, threshold)) =
        sqlx::query_as::<_, (String, i64)>("SELECT time_zone, low_balance_threshold FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(db)
            .await?
    else {
        return Ok(None);
    };
    let opening: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(balance), 0)::bigint FROM accounts WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(db)
        .await?;
    // Ordered by id so the same rows always give the same projection.
    let rows = sqlx::query_as::<_, (i64, String, chrono::NaiveDate, Option<chrono::NaiveDate>)>(
        "SELECT amount, cadence, anchor_date, end_date FROM recurring_items WHERE user_id = $1 ORDER BY id",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?;
    let items = rows
        .into_iter()
        .filter_map(|(amount, cadence, anchor, end)| {
            Some(Recurring {
                amount,
                cadence: Cadence::parse(&cadence)?,
                anchor,
                end,
            })
        })
        .collect();
    Ok(Some(Inputs {
        opening,
        threshold,
        time_zone: tz.parse().unwrap_or(Tz::UTC),
        items,
    }))
}

/// Upsert keyed by (user, as_of): a retry or a duplicate run rewrites the same row with the
/// same content instead of adding one.
pub async fn save(db: &PgPool, user_id: i64, p: &Projection) -> Result<(), sqlx::Error> {
    let days = serde_json::to_value(&p.days).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO cashflow_projections (user_id, as_of, horizon_days, opening, lowest_balance, lowest_date, first_shortfall, days)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (user_id, as_of) DO UPDATE SET horizon_days = EXCLUDED.horizon_days, opening = EXCLUDED.opening,
             lowest_balance = EXCLUDED.lowest_balance, lowest_date = EXCLUDED.lowest_date,
             first_shortfall = EXCLUDED.first_shortfall, days = EXCLUDED.days, computed_at = now()",
    )
    .bind(user_id)
    .bind(p.as_of)
    .bind(p.days.len() as i32)
    .bind(p.opening)
    .bind(p.lowest_balance)
    .bind(p.lowest_date)
    .bind(p.first_shortfall)
    .bind(days)
    .execute(db)
    .await?;
    Ok(())
}

//! `cashflow.project`: project one user's daily balance and store it under (user, as-of date).
use chrono::{NaiveDate, Utc};
use nightshift_catalog::cashflow::{DEFAULT_HORIZON_DAYS, Project, ProjectPayload};
use nightshift_queue::{Job, Outcome};

use super::{Handler, JobEnv};

pub mod engine;
pub mod nightly;
mod store;

impl Handler for Project {
    async fn run(env: &JobEnv, _job: &Job, p: ProjectPayload) -> Outcome {
        // In range: `Kind::check` ran before this.
        let horizon = p.horizon_days.unwrap_or(DEFAULT_HORIZON_DAYS);
        let started = std::time::Instant::now();
        let inputs = match store::load(&env.db, p.user_id, p.as_of).await {
            Ok(Some(inputs)) => inputs,
            Ok(None) => return Outcome::Dead(format!("user {} not found", p.user_id)),
            Err(e) => return Outcome::retry(format!("loading user data: {e}")),
        };
        let as_of = p
            .as_of
            .unwrap_or_else(|| Utc::now().with_timezone(&inputs.time_zone).date_naive());
        let loaded = started.elapsed();
        let projection = engine::project(
            inputs.opening,
            &inputs.items,
            &inputs.one_offs,
            as_of,
            horizon,
            inputs.threshold,
        );
        let computed = started.elapsed();
        let saved = store::save(&env.db, p.user_id, &projection, inputs.threshold).await;
        // Timings go with the result so a benchmark can split database time from compute time.
        let (db_us, compute_us) = (
            (loaded + (started.elapsed() - computed)).as_micros(),
            (computed - loaded).as_micros(),
        );
        if let (Ok(_), Some(date)) = (&saved, projection.first_shortfall) {
            let balance = projection.days[(date - projection.as_of).num_days() as usize].closing;
            if let Err(e) = warn_by_email(env, p.user_id, date, balance, inputs.threshold).await {
                return Outcome::retry(format!("queueing the low-balance e-mail: {e}"));
            }
        }
        match saved {
            Ok(new_alert) => Outcome::Succeeded(Some(
                serde_json::json!({
                    "user_id": p.user_id,
                    "as_of": projection.as_of,
                    "lowest_balance": projection.lowest_balance,
                    "lowest_date": projection.lowest_date,
                    "first_shortfall": projection.first_shortfall,
                    "new_shortfall_alert": new_alert,
                    "db_us": db_us,
                    "compute_us": compute_us,
                })
                .to_string(),
            )),
            Err(e) => Outcome::retry(format!("storing projection: {e}")),
        }
    }
}

/// Queues the low-balance e-mail for a shortfall, once per (user, shortfall date): the outbox
/// key is the fence, so tomorrow's projection finding the same shortfall, or a retry of this
/// one, sends nothing new. Reads the user only while that e-mail is not yet out.
async fn warn_by_email(
    env: &JobEnv,
    user_id: i64,
    date: NaiveDate,
    balance: i64,
    threshold: i64,
) -> Result<(), nightshift_catalog::email::EnqueueError> {
    use nightshift_catalog::email::{self, NewEmail};
    let key = format!("low_balance:{user_id}:{date}");
    let user: Option<(String, String, String)> = sqlx::query_as(
        "SELECT email, coalesce(name, split_part(email, '@', 1)), currency FROM users u
         WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM email_outbox WHERE message_key = $2 AND state <> 'pending')",
    )
    .bind(user_id)
    .bind(&key)
    .fetch_optional(&env.db)
    .await?;
    let Some((address, name, currency)) = user else {
        return Ok(());
    };
    let vars = serde_json::json!({
        "name": name,
        "date": date,
        "projected_balance": super::email::format_money(balance, &currency),
        "threshold": super::email::format_money(threshold, &currency),
    });
    let mail = NewEmail {
        key: &key,
        template: "low_balance",
        to: &address,
        vars: &vars,
    };
    match email::enqueue(&env.db, &env.queues, mail, &env.mail_domain).await {
        // A user whose address cannot take mail gets the alert in the app only.
        Err(email::EnqueueError::Address(a)) => {
            tracing::warn!(user_id, address = %a, "no low-balance e-mail: the address is not valid");
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

//! `cashflow.project` projects one user's daily balance and stores it under (user, as-of date);
//! `cashflow.project_many` does the same for a few hundred users of the nightly run at once.
use chrono::NaiveDate;
use nightshift_catalog::cashflow::{DEFAULT_HORIZON_DAYS, Project, ProjectMany, ProjectManyPayload, ProjectPayload};
use nightshift_queue::{Job, Outcome};

use super::{Handler, JobEnv};

pub mod engine;
pub mod nightly;
mod store;

use store::Write;

impl Handler for Project {
    async fn run(env: &JobEnv, _job: &Job, p: ProjectPayload) -> Outcome {
        let horizon = p.horizon_days.unwrap_or(DEFAULT_HORIZON_DAYS);
        let started = std::time::Instant::now();
        let inputs = match store::load(&env.db, &[(p.user_id, p.as_of)], false).await {
            Ok(found) => match found.into_iter().next() {
                Some(inputs) => inputs,
                None => return Outcome::Dead(format!("user {} not found", p.user_id)),
            },
            Err(e) => return Outcome::retry(format!("loading user data: {e}")),
        };
        let loaded = started.elapsed();
        let row = compute(&inputs, horizon, p.include_as_of);
        let computed = started.elapsed();
        let saved = store::save(&env.db, std::slice::from_ref(&row), Write::Replace).await;
        // Timings go with the result so a benchmark can split database time from compute time.
        let (db_us, compute_us) = (
            (loaded + (started.elapsed() - computed)).as_micros(),
            (computed - loaded).as_micros(),
        );
        let projection = &row.projection;
        let today = nightshift_queue::clock::now()
            .with_timezone(&inputs.time_zone)
            .date_naive();
        if saved.is_ok()
            && projection.first_shortfall.is_some()
            && let Err(e) = send_alerts(env, &[(p.user_id, projection.as_of, today)]).await
        {
            return Outcome::retry(format!("queueing the low-balance e-mail: {e}"));
        }
        match saved {
            Ok(written) => Outcome::Succeeded(Some(
                serde_json::json!({
                    "user_id": p.user_id,
                    "as_of": projection.as_of,
                    "lowest_balance": projection.lowest_balance,
                    "lowest_date": projection.lowest_date,
                    "first_shortfall": projection.first_shortfall,
                    "new_shortfall_alert": written.iter().any(|(_, alert)| *alert),
                    "db_us": db_us,
                    "compute_us": compute_us,
                })
                .to_string(),
            )),
            Err(e) => Outcome::retry(format!("storing projection: {e}")),
        }
    }
}

impl Handler for ProjectMany {
    async fn run(env: &JobEnv, _job: &Job, p: ProjectManyPayload) -> Outcome {
        let started = std::time::Instant::now();
        let asked: Vec<(i64, Option<NaiveDate>)> = p.users.iter().map(|&(id, d)| (id, Some(d))).collect();
        // Users already projected for their date are left out: a retry, or a second job
        // holding the same user after the fan-out was re-run, stores nothing twice.
        let inputs = match store::load(&env.db, &asked, true).await {
            Ok(inputs) => inputs,
            Err(e) => return Outcome::retry(format!("loading user data: {e}")),
        };
        let loaded = started.elapsed();
        let rows: Vec<_> = inputs.iter().map(|i| compute(i, DEFAULT_HORIZON_DAYS, false)).collect();
        let computed = started.elapsed();
        let mut stored = 0;
        for chunk in rows.chunks(store::MAX_ROWS) {
            match store::save(&env.db, chunk, Write::Once).await {
                Ok(written) => stored += written.len(),
                Err(e) => return Outcome::retry(format!("storing projections: {e}")),
            }
        }
        let saved = started.elapsed();
        // Every e-mail these users' projections call for and that is not out yet, including
        // those of users a run that died after storing them did not get to.
        // Each user's date is their today when the run was planned: their current projection.
        let users: Vec<_> = p.users.iter().map(|&(id, d)| (id, d, d)).collect();
        let alerts = match send_alerts(env, &users).await {
            Ok(n) => n,
            Err(e) => return Outcome::retry(format!("queueing the low-balance e-mails: {e}")),
        };
        Outcome::Succeeded(Some(
            serde_json::json!({
                "users": p.users.len(),
                "computed": rows.len(),
                "stored": stored,
                "alerts": alerts,
                "db_us": (loaded + (saved - computed)).as_micros(),
                "compute_us": (computed - loaded).as_micros(),
                "alerts_us": (started.elapsed() - saved).as_micros(),
            })
            .to_string(),
        ))
    }
}

/// One user's projection from their inputs: as of the date asked, or their today.
fn compute(inputs: &store::Inputs, horizon: u32, include_as_of: bool) -> store::Row<'_> {
    let as_of = inputs.as_of.unwrap_or_else(|| {
        nightshift_queue::clock::now()
            .with_timezone(&inputs.time_zone)
            .date_naive()
    });
    let opening = engine::opening(inputs.balances, &inputs.items, &inputs.one_offs, as_of, include_as_of);
    store::Row {
        inputs,
        projection: engine::project(
            opening,
            &inputs.items,
            &inputs.one_offs,
            as_of,
            horizon,
            inputs.threshold,
        ),
        include_as_of,
    }
}

/// Queues the low-balance e-mails the stored projections of `users` (id, as-of date, the
/// user's today) call for, once per (user, shortfall date): the outbox key is the fence, so
/// tomorrow's projection finding the same shortfall, or a retry of this one, sends nothing new.
/// Asked after storing, so a run that died between storing and e-mailing sends them when it
/// runs again. Only a user's current projection alerts: a what-if (another date than the
/// newest up to their today) is a question asked of the data, not a warning to send.
async fn send_alerts(
    env: &JobEnv,
    users: &[(i64, NaiveDate, NaiveDate)],
) -> Result<usize, nightshift_catalog::email::EnqueueError> {
    use nightshift_catalog::email::{self, NewEmail};
    let owed = store::alerts_owed(&env.db, users).await?;
    if owed.is_empty() {
        return Ok(0);
    }
    let mails: Vec<(String, String, serde_json::Value)> = owed
        .into_iter()
        .map(|a| {
            let vars = serde_json::json!({
                "name": a.name,
                "date": a.date,
                "projected_balance": super::email::format_money(a.balance, &a.currency),
                "threshold": super::email::format_money(a.threshold, &a.currency),
            });
            (format!("low_balance:{}:{}", a.user_id, a.date), a.address, vars)
        })
        .collect();
    let new: Vec<NewEmail<'_>> = mails
        .iter()
        .map(|(key, to, vars)| NewEmail {
            key,
            template: "low_balance",
            to,
            vars,
        })
        .collect();
    email::enqueue_many(&env.db, &env.queues, &new, &env.mail_domain).await
}

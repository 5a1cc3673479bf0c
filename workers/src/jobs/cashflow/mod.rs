//! `cashflow.project`: project one user's daily balance and store it under (user, as-of date).
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use nightshift_queue::{Backoff, Job, Outcome};
use serde::{Deserialize, Serialize};

use super::{JobEnv, JobKind, Policy};

pub mod engine;
pub mod nightly;
mod store;

pub use nightly::Nightly;

pub const DEFAULT_HORIZON_DAYS: u32 = 90;

pub struct Project;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectPayload {
    pub user_id: i64,
    /// The user's local date to project from; defaults to today in the user's time zone.
    #[serde(default)]
    pub as_of: Option<NaiveDate>,
    #[serde(default)]
    pub horizon_days: Option<u32>,
}

impl JobKind for Project {
    const NAME: &'static str = "cashflow.project";
    const POLICY: Policy = Policy {
        queue: "cashflow",
        max_attempts: 5,
        timeout: Duration::from_secs(60),
        backoff: Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(600),
        },
    };
    type Payload = ProjectPayload;

    async fn run(env: &JobEnv, _job: &Job, p: ProjectPayload) -> Outcome {
        let horizon = p.horizon_days.unwrap_or(DEFAULT_HORIZON_DAYS);
        if !(1..=366).contains(&horizon) {
            return Outcome::Dead(format!("horizon_days must be 1..=366, got {horizon}"));
        }
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

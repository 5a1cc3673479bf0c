//! `cashflow.nightly`: enqueue one projection per user once it is past 02:00 in the user's own
//! time zone. Runs hourly (the scheduler issue wires the tick); each run picks the users whose
//! local 02:00 has passed and who have no projection for their local date yet.
//!
//! Resumable by construction: a run killed half-way is re-run by the queue and walks the users
//! again; users already projected are skipped by the query, and users pushed but not yet
//! projected are pushed again with the same idempotency key, which returns the same job.
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use nightshift_queue::{Backoff, Job, NewJob, Outcome};
use serde::{Deserialize, Serialize};

use super::Project;
use crate::jobs::{Exposure, JobEnv, JobKind, Policy};

pub const LOCAL_START: &str = "02:00";
const PAGE: i64 = 1000;

pub struct Nightly;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NightlyPayload {
    /// The instant whose local times decide who is due; defaults to now.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// Pushes projections for due users, `page_size` per round trip, at most `max_pages` pages
/// (None: all). Returns how many users were pushed.
pub async fn fan_out(env: &JobEnv, at: DateTime<Utc>, page_size: i64, max_pages: Option<u32>) -> anyhow::Result<u64> {
    let spec = crate::jobs::find(Project::NAME).expect("cashflow.project is in the catalog");
    let queue = env
        .queues
        .get(Project::POLICY.queue)
        .ok_or_else(|| anyhow::anyhow!("queue {} missing", Project::POLICY.queue))?;
    // Unknown zone names project in UTC (as the projection job does) instead of failing the
    // whole run. Checked once per run: PostgreSQL's own zone list is slow to read per page.
    let zones: Vec<String> = sqlx::query_scalar("SELECT DISTINCT time_zone FROM users")
        .fetch_all(&env.db)
        .await?;
    let valid: Vec<String> = zones
        .into_iter()
        .filter(|z| z.parse::<chrono_tz::Tz>().is_ok())
        .collect();
    let (mut after, mut pushed, mut pages) = (0i64, 0u64, 0u32);
    loop {
        let due: Vec<(i64, NaiveDate)> = sqlx::query_as(
            "WITH u AS (
                SELECT id, $2::timestamptz AT TIME ZONE
                    (CASE WHEN time_zone = ANY($5) THEN time_zone ELSE 'UTC' END) AS local
                FROM users WHERE id > $1
             )
             SELECT u.id, u.local::date FROM u
             WHERE u.local::time >= $3::time
               AND NOT EXISTS (SELECT 1 FROM cashflow_projections c WHERE c.user_id = u.id AND c.as_of = u.local::date)
             ORDER BY u.id LIMIT $4",
        )
        .bind(after)
        .bind(at)
        .bind(LOCAL_START)
        .bind(page_size)
        .bind(&valid)
        .fetch_all(&env.db)
        .await?;
        let Some(&(last, _)) = due.last() else {
            return Ok(pushed);
        };
        let jobs: Vec<NewJob> = due
            .iter()
            .map(|(user, date)| {
                spec.new_job(&serde_json::json!({ "user_id": user, "as_of": date }))
                    .idempotency_key(format!("cashflow.nightly:{user}:{date}"))
            })
            .collect();
        queue.push_bulk(&jobs).await?;
        pushed += jobs.len() as u64;
        after = last;
        pages += 1;
        if max_pages.is_some_and(|m| pages >= m) {
            return Ok(pushed);
        }
    }
}

impl JobKind for Nightly {
    const NAME: &'static str = "cashflow.nightly";
    const EXPOSURE: Exposure = Exposure::Operator;
    const POLICY: Policy = Policy {
        queue: "default",
        max_attempts: 5,
        timeout: Duration::from_secs(1800),
        backoff: Backoff {
            base: Duration::from_secs(30),
            max: Duration::from_secs(900),
        },
    };
    type Payload = NightlyPayload;

    async fn run(env: &JobEnv, _job: &Job, p: NightlyPayload) -> Outcome {
        match fan_out(env, p.at.unwrap_or_else(Utc::now), PAGE, None).await {
            Ok(pushed) => Outcome::Succeeded(Some(serde_json::json!({ "pushed": pushed }).to_string())),
            Err(e) => Outcome::retry(format!("fan-out: {e:#}")),
        }
    }
}

//! `cashflow.nightly`: project every user once it is past 02:00 in the user's own time zone.
//! Runs hourly; each run picks the users whose local 02:00 has passed and who have no
//! projection for their local date yet, and pushes them a page at a time, each page one
//! `cashflow.project_many` job.
//!
//! Resumable by construction: a run killed half-way is re-run by the queue and walks the users
//! again. Users already projected are skipped by the query; a page pushed but not yet run is
//! pushed again under the same idempotency key (a digest of its users), which returns the same
//! job. Should a page come out different (some of its users projected meanwhile), a user may
//! sit in two jobs: the second finds them projected and stores nothing.
use chrono::{DateTime, NaiveDate, Utc};
use nightshift_catalog::{
    Kind,
    cashflow::{LOCAL_START, Nightly, NightlyPayload, ProjectMany, ProjectManyPayload, USERS_PER_JOB},
};
use nightshift_queue::{Job, Outcome};
use sha2::{Digest, Sha256};

use crate::jobs::{Handler, JobEnv, progress::Progress};

/// Pushes projections for due users, `page_size` per job, at most `max_pages` pages (None:
/// all), reporting how far through the users it is. Returns how many users were pushed.
pub async fn fan_out(
    env: &JobEnv,
    at: DateTime<Utc>,
    page_size: i64,
    max_pages: Option<u32>,
    progress: Option<&Progress<'_>>,
) -> anyhow::Result<u64> {
    // Unknown zone names project in UTC (as the projection job does) instead of failing the
    // whole run. Checked once per run: PostgreSQL's own zone list is slow to read per page.
    let zones: Vec<String> = sqlx::query_scalar("SELECT DISTINCT time_zone FROM users")
        .fetch_all(&env.db)
        .await?;
    let valid: Vec<String> = zones
        .into_iter()
        .filter(|z| z.parse::<chrono_tz::Tz>().is_ok())
        .collect();
    // Ids walk upwards: how far the walk is, against the largest, is how far the run is.
    let last_id: i64 = sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM users")
        .fetch_one(&env.db)
        .await?;
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
            if let Some(p) = progress {
                p.report(100, &format!("pushed {pushed} users")).await;
            }
            return Ok(pushed);
        };
        let payload = ProjectManyPayload { users: due };
        let digest = Sha256::digest(serde_json::to_vec(&payload)?);
        let key = format!("cashflow.nightly:{}", hex::encode(&digest[..16]));
        env.queues.push(ProjectMany::job(&payload).idempotency_key(key)).await?;
        pushed += payload.users.len() as u64;
        after = last;
        pages += 1;
        if let Some(p) = progress {
            let percent = (after.saturating_mul(100) / last_id.max(1)).clamp(0, 99) as u8;
            p.report(percent, &format!("pushed {pushed} users")).await;
        }
        if max_pages.is_some_and(|m| pages >= m) {
            return Ok(pushed);
        }
    }
}

impl Handler for Nightly {
    async fn run(env: &JobEnv, job: &Job, p: NightlyPayload) -> Outcome {
        let progress = Progress::of(env, job);
        match fan_out(
            env,
            p.at.unwrap_or_else(Utc::now),
            USERS_PER_JOB as i64,
            None,
            Some(&progress),
        )
        .await
        {
            Ok(pushed) => Outcome::Succeeded(Some(serde_json::json!({ "pushed": pushed }).to_string())),
            Err(e) => Outcome::retry(format!("fan-out: {e:#}")),
        }
    }
}

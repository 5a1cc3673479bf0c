//! `cashflow.nightly`: project every user once it is past 02:00 in the user's own time zone.
//! Runs hourly; each run picks the users whose local 02:00 has passed and who have no
//! projection for their local date yet, and pushes them a page at a time, each page one
//! `cashflow.project_many` job.
//!
//! A run is a batch (its id the run's job id): its pages are the batch's jobs, sealed once the
//! last is pushed, and `cashflow.nightly_done` records the run's summary when all have finished.
//!
//! Resumable by construction: a run killed half-way is re-run by the queue and walks the users
//! again. Users already projected are skipped by the query; a page pushed but not yet run is
//! pushed again under the same idempotency key and job id (a digest of its users), which the
//! queue and the batch each take as the same job. Should a page come out different (some of
//! its users projected meanwhile), a user may sit in two jobs: the second finds them projected
//! and stores nothing.
use chrono::{DateTime, NaiveDate, Utc};
use nightshift_catalog::{
    Kind,
    cashflow::{
        LOCAL_START, Nightly, NightlyDone, NightlyDonePayload, NightlyPayload, ProjectMany, ProjectManyPayload,
        USERS_PER_JOB,
    },
};
use nightshift_common::batches::{self, AddError, Callback, NewBatch};
use nightshift_queue::{Job, Outcome};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::jobs::{Handler, JobEnv, progress::Progress};

/// How a run pages its users.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub page_size: i64,
    /// Stop after this many pages (None: all), as a run killed half-way would.
    pub max_pages: Option<u32>,
    /// Attempts of each page's job (None: its kind's).
    pub page_attempts: Option<u32>,
}

/// Pushes projections for due users into batch `run`, `page_size` per job, reporting how far
/// through the users it is, and seals the batch once every page is in (not when stopped by
/// `max_pages`). Returns how many users were pushed; with none, no batch is made.
pub async fn fan_out(
    env: &JobEnv,
    run: Uuid,
    at: DateTime<Utc>,
    paging: Paging,
    progress: Option<&Progress<'_>>,
) -> anyhow::Result<u64> {
    let Paging {
        page_size,
        max_pages,
        page_attempts,
    } = paging;
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
            if pushed > 0 {
                batches::seal(&env.db, run).await?;
            }
            if let Some(p) = progress {
                p.report(100, &format!("pushed {pushed} users")).await;
            }
            return Ok(pushed);
        };
        if pushed == 0 {
            // The run's batch, made with its first page (again, harmlessly, on a retry).
            let batch = NewBatch {
                id: run,
                submitted_by: None,
                submitted_user: None,
                description: Some(format!("cashflow.nightly at {at}")),
                on_complete: Some(Callback {
                    kind: NightlyDone::NAME.into(),
                    payload: serde_json::to_value(NightlyDonePayload { batch: None })?,
                }),
                on_success: None,
                sealed: false,
                traceparent: None,
            };
            batches::create(&env.db, &batch, &[], None).await?;
        }
        let payload = ProjectManyPayload { users: due };
        let digest = Sha256::digest(serde_json::to_vec(&payload)?);
        let key = format!("cashflow.nightly:{}", hex::encode(&digest[..16]));
        let mut job = ProjectMany::job(&payload).idempotency_key(key).into_inner();
        if let Some(n) = page_attempts {
            job = job.max_attempts(n);
        }
        // The page's id follows from its users, so a retried run adds and pushes the same job.
        let page = uuid::Builder::from_random_bytes(digest[..16].try_into()?).into_uuid();
        job.id = page.to_string();
        match batches::add(&env.db, run, &[page]).await {
            // Sealed: a retry of a run that had finished pushing; its pages are in.
            Ok(()) | Err(AddError::Sealed) => {}
            Err(e) => return Err(e.into()),
        }
        env.queues.of::<ProjectMany>().push(job.batch(run.to_string())).await?;
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
        let Ok(run) = Uuid::parse_str(&job.id) else {
            return Outcome::Dead(format!("job id `{}` is not a UUID", job.id));
        };
        let paging = Paging {
            page_size: USERS_PER_JOB as i64,
            max_pages: None,
            page_attempts: p.page_attempts,
        };
        match fan_out(env, run, p.at.unwrap_or_else(Utc::now), paging, Some(&progress)).await {
            Ok(pushed) => Outcome::Succeeded(Some(serde_json::json!({ "pushed": pushed }).to_string())),
            Err(e) => Outcome::retry(format!("fan-out: {e:#}")),
        }
    }
}

impl Handler for NightlyDone {
    async fn run(env: &JobEnv, _: &Job, p: NightlyDonePayload) -> Outcome {
        let Some(batch) = p.batch else {
            return Outcome::Dead("not a batch callback: no `batch` in the payload".into());
        };
        let Ok(id) = Uuid::parse_str(&batch.id) else {
            return Outcome::Dead(format!("batch id `{}` is not a UUID", batch.id));
        };
        // The pages' outcomes reach the history a moment after the queue: wait for them (a
        // minute at most, then record what is there: with the history off it never comes).
        let waiting: Result<bool, sqlx::Error> = sqlx::query_scalar(
            "SELECT count(h.id) < b.total AND b.finished_at > now() - interval '1 minute'
             FROM batches b JOIN batch_jobs bj ON bj.batch_id = b.id
             LEFT JOIN job_history h ON h.id = bj.job_id AND h.state IN ('succeeded', 'dead', 'cancelled')
             WHERE b.id = $1 GROUP BY b.id",
        )
        .bind(id)
        .fetch_optional(&env.db)
        .await
        .map(|w| w.unwrap_or(false));
        match waiting {
            Ok(true) => {
                return Outcome::Snooze {
                    reason: "waiting for the pages' history".into(),
                    after: std::time::Duration::from_millis(500),
                };
            }
            Ok(false) => {}
            Err(e) => return Outcome::retry(format!("reading the run: {e}")),
        }
        match record_run(&env.db, id).await {
            Ok(summary) => Outcome::Succeeded(Some(summary.to_string())),
            Err(e) => Outcome::retry(format!("recording the run: {e}")),
        }
    }
}

/// Writes the run's summary once, from its batch and its pages' records: users pushed, users
/// the pages stored, users of pages that died.
async fn record_run(db: &sqlx::PgPool, batch: Uuid) -> Result<serde_json::Value, sqlx::Error> {
    sqlx::query(
        "INSERT INTO cashflow_runs (batch_id, started_at, finished_at, users, projected, failed, jobs, dead_jobs)
         SELECT b.id, b.created_at, b.finished_at,
                coalesce(sum(jsonb_array_length(h.payload->'users')), 0),
                coalesce(sum((h.result->>'stored')::int) FILTER (WHERE bj.state = 'succeeded'), 0),
                coalesce(sum(jsonb_array_length(h.payload->'users')) FILTER (WHERE bj.state <> 'succeeded'), 0),
                b.total, b.dead + b.cancelled
         FROM batches b
         JOIN batch_jobs bj ON bj.batch_id = b.id
         LEFT JOIN job_history h ON h.id = bj.job_id
         WHERE b.id = $1 AND b.finished_at IS NOT NULL
         GROUP BY b.id
         ON CONFLICT (batch_id) DO NOTHING",
    )
    .bind(batch)
    .execute(db)
    .await?;
    let (users, projected, failed, jobs, dead, secs): (i32, i32, i32, i32, i32, f64) = sqlx::query_as(
        "SELECT users, projected, failed, jobs, dead_jobs, extract(epoch FROM finished_at - started_at)::float8
         FROM cashflow_runs WHERE batch_id = $1",
    )
    .bind(batch)
    .fetch_one(db)
    .await?;
    Ok(serde_json::json!({
        "users": users, "projected": projected, "failed": failed, "jobs": jobs, "dead_jobs": dead,
        "duration_secs": secs,
    }))
}

//! Diagnostic kinds: a no-op for benchmarks and smoke tests, kinds that let tests and the
//! chaos runner exercise crashes and failures through the real worker, and one that records an
//! unfenced effect to count lost and duplicated work.
use std::time::Duration;

use nightshift_catalog::diag::{
    Abort, AbortPayload, Block, BlockPayload, Effect, EffectPayload, Fail, FailPayload, Noop, NoopPayload, Sleep,
    SleepPayload, Snooze, SnoozePayload,
};
use nightshift_queue::{Job, Outcome};

use super::{Handler, JobEnv, progress::Progress};

impl Handler for Noop {
    async fn run(_: &JobEnv, _: &Job, _: NoopPayload) -> Outcome {
        Outcome::Succeeded(None)
    }
}

impl Handler for Sleep {
    async fn run(env: &JobEnv, job: &Job, p: SleepPayload) -> Outcome {
        // Reports how far it is as it goes (coalesced to about a write a second), so tests see
        // a progress bar move.
        let total = Duration::from_millis(p.ms.min(600_000));
        let progress = Progress::of(env, job);
        let start = std::time::Instant::now();
        while let Some(left) = total.checked_sub(start.elapsed()).filter(|l| !l.is_zero()) {
            tokio::time::sleep(left.min(Duration::from_millis(100))).await;
            if !p.quiet {
                let done = start.elapsed().as_millis() * 100 / total.as_millis().max(1);
                progress.report(done.min(100) as u8, "sleeping").await;
            }
        }
        Outcome::Succeeded(Some(
            serde_json::json!({ "slept_ms": p.ms, "attempt": job.attempt }).to_string(),
        ))
    }
}

impl Handler for Block {
    async fn run(_: &JobEnv, job: &Job, p: BlockPayload) -> Outcome {
        // Deliberately blocking: this kind exists to hold a runtime thread.
        std::thread::sleep(Duration::from_millis(p.ms.min(600_000)));
        Outcome::Succeeded(Some(
            serde_json::json!({ "blocked_ms": p.ms, "attempt": job.attempt }).to_string(),
        ))
    }
}

impl Handler for Fail {
    async fn run(_: &JobEnv, job: &Job, p: FailPayload) -> Outcome {
        if p.succeed_from_attempt.is_some_and(|n| job.attempt >= n) {
            return Outcome::Succeeded(Some(format!("{{\"succeeded_on_attempt\":{}}}", job.attempt)));
        }
        let msg = p.message.unwrap_or_else(|| "diag.fail always fails".into());
        Outcome::Retry {
            error: format!("{msg} (attempt {})", job.attempt),
            after: p.retry_after_ms.map(|ms| Duration::from_millis(ms.min(60_000))),
        }
    }
}

impl Handler for Snooze {
    async fn run(env: &JobEnv, job: &Job, p: SnoozePayload) -> Outcome {
        let key = format!("diag:snoozes:{}", job.id);
        let mut conn = env.redis.clone();
        let n: Result<u32, _> = redis::cmd("INCR").arg(&key).query_async(&mut conn).await;
        match n {
            Err(e) => Outcome::retry(format!("counting snoozes: {e}")),
            Ok(n) if n <= p.times => Outcome::Snooze {
                reason: format!("snooze {n} of {}", p.times),
                after: Duration::from_millis(20),
            },
            Ok(n) => {
                let _: Result<(), _> = redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
                Outcome::Succeeded(Some(
                    serde_json::json!({ "snoozed": n - 1, "attempt": job.attempt }).to_string(),
                ))
            }
        }
    }
}

impl Handler for Effect {
    async fn run(env: &JobEnv, job: &Job, p: EffectPayload) -> Outcome {
        let Ok(id) = uuid::Uuid::parse_str(&job.id) else {
            return Outcome::Dead(format!("job id `{}` is not a UUID", job.id));
        };
        // clock_timestamp(), not now(): spans of runs in other sessions are compared.
        let run: i64 = match sqlx::query_scalar(
            "INSERT INTO diag_effects (job_id, attempt, at) VALUES ($1, $2, clock_timestamp()) RETURNING id",
        )
        .bind(id)
        .bind(job.attempt as i32)
        .fetch_one(&env.db)
        .await
        {
            Ok(run) => run,
            Err(e) => return Outcome::retry(format!("recording the execution: {e}")),
        };
        let Some(key) = p.key else {
            return Outcome::Succeeded(None);
        };
        tokio::time::sleep(Duration::from_millis(p.ms.min(60_000))).await;
        if let Err(e) = sqlx::query("UPDATE diag_effects SET ended_at = clock_timestamp() WHERE id = $1")
            .bind(run)
            .execute(&env.db)
            .await
        {
            return Outcome::retry(format!("recording the execution's end: {e}"));
        }
        match apply_once(&env.db, &key, id, job.attempt).await {
            Ok(applied) => Outcome::Succeeded(Some(serde_json::json!({ "applied": applied }).to_string())),
            Err(e) => Outcome::retry(format!("applying the effect: {e}")),
        }
    }
}

/// The effect under its business key, at most once: false when an earlier run applied it.
async fn apply_once(db: &sqlx::PgPool, key: &str, job: uuid::Uuid, attempt: u32) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let fresh =
        sqlx::query("INSERT INTO diag_ledger_keys (business_key, job_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(key)
            .bind(job)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
    if fresh {
        sqlx::query("INSERT INTO diag_ledger (business_key, job_id, attempt) VALUES ($1, $2, $3)")
            .bind(key)
            .bind(job)
            .bind(attempt as i32)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(fresh)
}

impl Handler for Abort {
    async fn run(_: &JobEnv, _: &Job, _: AbortPayload) -> Outcome {
        if std::env::var("NIGHTSHIFT_DIAG_ABORT").as_deref() != Ok("1") {
            return Outcome::Dead("diag.abort is disabled here (NIGHTSHIFT_DIAG_ABORT is not 1)".into());
        }
        std::process::abort()
    }
}

//! Diagnostic kinds: a no-op for benchmarks and smoke tests, kinds that let tests and the
//! chaos runner exercise crashes and failures through the real worker, and one that records an
//! unfenced effect to count lost and duplicated work.
use std::time::Duration;

use nightshift_queue::{Backoff, Job, Outcome};
use serde::{Deserialize, Serialize};

use super::{Exposure, JobEnv, JobKind, Policy};

const DIAG_POLICY: Policy = Policy {
    queue: "default",
    max_attempts: 3,
    timeout: Duration::from_secs(60),
    backoff: Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(5),
    },
};

/// Does nothing; succeeds.
pub struct Noop;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoopPayload {}

impl JobKind for Noop {
    const NAME: &'static str = "noop";
    const EXPOSURE: Exposure = Exposure::Client;
    const DIAGNOSTIC: bool = true;
    const POLICY: Policy = DIAG_POLICY;
    type Payload = NoopPayload;
    async fn run(_: &JobEnv, _: &Job, _: NoopPayload) -> Outcome {
        Outcome::Succeeded(None)
    }
}

/// Sleeps, then succeeds with the attempt it ran on: lets tests kill a worker mid-job.
pub struct Sleep;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepPayload {
    pub ms: u64,
}

impl JobKind for Sleep {
    const NAME: &'static str = "diag.sleep";
    const EXPOSURE: Exposure = Exposure::Client;
    const DIAGNOSTIC: bool = true;
    const POLICY: Policy = DIAG_POLICY;
    type Payload = SleepPayload;
    async fn run(_: &JobEnv, job: &Job, p: SleepPayload) -> Outcome {
        tokio::time::sleep(Duration::from_millis(p.ms.min(600_000))).await;
        Outcome::Succeeded(Some(
            serde_json::json!({ "slept_ms": p.ms, "attempt": job.attempt }).to_string(),
        ))
    }
}

/// Fails with the given message: it must end dead after exactly its max attempts. With
/// `succeed_from_attempt` it succeeds from that attempt on, as a job whose cause was fixed
/// does when an operator retries it.
pub struct Fail;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailPayload {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub succeed_from_attempt: Option<u32>,
    /// Never used: a field the kind declares sensitive, so masking is tested on a real kind.
    #[serde(default)]
    pub token: Option<String>,
}

impl JobKind for Fail {
    const NAME: &'static str = "diag.fail";
    const EXPOSURE: Exposure = Exposure::Client;
    const DIAGNOSTIC: bool = true;
    const POLICY: Policy = DIAG_POLICY;
    const SENSITIVE: &'static [&'static str] = &["token"];
    type Payload = FailPayload;
    async fn run(_: &JobEnv, job: &Job, p: FailPayload) -> Outcome {
        if p.succeed_from_attempt.is_some_and(|n| job.attempt >= n) {
            return Outcome::Succeeded(Some(format!("{{\"succeeded_on_attempt\":{}}}", job.attempt)));
        }
        let msg = p.message.unwrap_or_else(|| "diag.fail always fails".into());
        Outcome::retry(format!("{msg} (attempt {})", job.attempt))
    }
}

/// Snoozes `times` times, then succeeds with how often it snoozed: proves a snooze uses no
/// attempt (the count is kept in Redis, since the attempt number does not move).
pub struct Snooze;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnoozePayload {
    pub times: u32,
}

impl JobKind for Snooze {
    const NAME: &'static str = "diag.snooze";
    const EXPOSURE: Exposure = Exposure::Client;
    const DIAGNOSTIC: bool = true;
    const POLICY: Policy = DIAG_POLICY;
    type Payload = SnoozePayload;
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

/// Records one row in `diag_effects` per execution, unfenced: counting rows per job id shows
/// lost jobs (none) and duplicated executions. With a business `key`, it then holds the job for
/// `ms` (so faults land mid-job) and applies a fenced effect: the key's done row and the ledger
/// row commit in one transaction, so a second execution of the same key applies nothing.
pub struct Effect;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EffectPayload {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub ms: u64,
}

impl JobKind for Effect {
    const NAME: &'static str = "diag.effect";
    const EXPOSURE: Exposure = Exposure::Client;
    const DIAGNOSTIC: bool = true;
    const POLICY: Policy = DIAG_POLICY;
    type Payload = EffectPayload;
    async fn run(env: &JobEnv, job: &Job, p: EffectPayload) -> Outcome {
        let Ok(id) = uuid::Uuid::parse_str(&job.id) else {
            return Outcome::Dead(format!("job id `{}` is not a UUID", job.id));
        };
        if let Err(e) = sqlx::query("INSERT INTO diag_effects (job_id, attempt) VALUES ($1, $2)")
            .bind(id)
            .bind(job.attempt as i32)
            .execute(&env.db)
            .await
        {
            return Outcome::retry(format!("recording the execution: {e}"));
        }
        let Some(key) = p.key else {
            return Outcome::Succeeded(None);
        };
        tokio::time::sleep(Duration::from_millis(p.ms.min(60_000))).await;
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

/// Aborts its worker process on every attempt, like a segfaulting native library: the lease
/// expires, the reaper counts the attempt, and the job must end dead at its max attempts rather
/// than kill workers forever. Only where NIGHTSHIFT_DIAG_ABORT=1 (the chaos runner's workers):
/// elsewhere any client could take a worker down with one request.
pub struct Abort;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortPayload {}

impl JobKind for Abort {
    const NAME: &'static str = "diag.abort";
    const EXPOSURE: Exposure = Exposure::Operator;
    const DIAGNOSTIC: bool = true;
    const POLICY: Policy = DIAG_POLICY;
    type Payload = AbortPayload;
    async fn run(_: &JobEnv, _: &Job, _: AbortPayload) -> Outcome {
        if std::env::var("NIGHTSHIFT_DIAG_ABORT").as_deref() != Ok("1") {
            return Outcome::Dead("diag.abort is disabled here (NIGHTSHIFT_DIAG_ABORT is not 1)".into());
        }
        std::process::abort()
    }
}

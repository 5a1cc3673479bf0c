//! Redis restarted empty. Every job the API accepted is on record in `job_history` before the
//! 202, and workers record each state change; so when Redis loses its data (no AOF, a failover
//! to a replica that lagged, an operator's FLUSHALL) the jobs it held are re-derived from
//! PostgreSQL: every job whose last recorded state is not final and that Redis no longer knows
//! is pushed again under its own id. Handlers are idempotent, so a job that had in fact
//! finished after its last history write runs twice at worst, with one effect.
//!
//! Detection is an epoch: a random value written to Redis and PostgreSQL on first start. A
//! Redis without it (or with another) is a Redis that lost data; readiness reports it until a
//! worker has re-derived the work and written the epoch back.
use std::{collections::HashMap, time::Duration};

use nightshift_queue::{NewJob, Queue, QueueConfig, QueueError, RedisConn};
use redis::AsyncCommands;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
}

/// What Redis holds compared with what PostgreSQL remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epoch {
    /// The dataset PostgreSQL knows (or a first start, now recorded in both).
    Current,
    /// Redis lost its data: jobs must be re-derived before the platform is whole again.
    Lost,
}

fn redis_key(prefix: &str) -> String {
    format!("{prefix}:epoch")
}

async fn recorded(db: &PgPool, prefix: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT epoch FROM redis_epoch WHERE prefix = $1")
        .bind(prefix)
        .fetch_optional(db)
        .await
}

/// Compares the two epochs; on a first start (neither has one) records a new one in both.
pub async fn check(db: &PgPool, conn: &mut RedisConn, prefix: &str) -> Result<Epoch, RecoveryError> {
    let in_redis: Option<String> = conn.get(redis_key(prefix)).await?;
    match (in_redis, recorded(db, prefix).await?) {
        (Some(r), Some(p)) if r == p => Ok(Epoch::Current),
        (Some(_), Some(_)) | (None, Some(_)) => Ok(Epoch::Lost),
        (Some(r), None) => {
            // Redis predates this table (an upgrade): adopt its epoch.
            record(db, prefix, &r).await?;
            Ok(Epoch::Current)
        }
        (None, None) => {
            let fresh = Uuid::new_v4().to_string();
            // Two processes starting at once: the first SET wins and both record that value.
            let _: bool = conn.set_nx(redis_key(prefix), &fresh).await?;
            let epoch: String = conn.get(redis_key(prefix)).await?;
            record(db, prefix, &epoch).await?;
            Ok(Epoch::Current)
        }
    }
}

async fn record(db: &PgPool, prefix: &str, epoch: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO redis_epoch (prefix, epoch) VALUES ($1, $2) ON CONFLICT (prefix) DO NOTHING")
        .bind(prefix)
        .bind(epoch)
        .execute(db)
        .await?;
    Ok(())
}

/// Builds a job of a kind with the kind's policy (timeout, attempts); `None` for a kind this
/// build does not know. The worker passes its catalog's: this crate does not have it.
pub type JobFor = fn(&str, &serde_json::Value) -> Option<NewJob>;

/// Re-derives lost jobs when the epoch says Redis lost data; returns `Current` once the
/// platform is whole (it was, or this process re-derived the jobs), `Lost` while another
/// process holds the recovery lock.
pub async fn recover_if_lost(
    db: &PgPool,
    conn: &mut RedisConn,
    config: &QueueConfig,
    job_for: JobFor,
) -> Result<Epoch, RecoveryError> {
    let prefix = config.prefix.as_str();
    if check(db, conn, prefix).await? == Epoch::Current {
        return Ok(Epoch::Current);
    }
    let lock = format!("{prefix}:epoch:recovering");
    let mine: bool = redis::cmd("SET")
        .arg(&lock)
        .arg(std::process::id())
        .arg("NX")
        .arg("EX")
        .arg(600)
        .query_async::<Option<String>>(conn)
        .await?
        .is_some();
    if !mine {
        return Ok(Epoch::Lost);
    }
    let result = rederive(db, conn, config, job_for, Uuid::nil()).await;
    if let Ok(n) = &result {
        // Whole again: the epoch goes back only after every lost job is queued.
        let epoch = recorded(db, prefix).await?.unwrap_or_default();
        let _: () = conn.set(redis_key(prefix), &epoch).await?;
        tracing::warn!(
            jobs = n,
            "redis had lost its data: jobs re-derived from the job history"
        );
        metrics::counter!("nightshift_redis_recoveries_total").increment(1);
    }
    let _: () = conn.del(&lock).await?;
    result.map(|_| Epoch::Current)
}

/// A job as the history has it: id, queue, kind, payload, max attempts.
type HistoryRow = (Uuid, String, String, Option<serde_json::Value>, Option<i32>);

/// Re-pushes the jobs made after `after` (a UUIDv7 bound: ids sort by creation) whose last
/// recorded state is not final and that Redis does not have.
async fn rederive(
    db: &PgPool,
    conn: &mut RedisConn,
    config: &QueueConfig,
    job_for: JobFor,
    mut after: Uuid,
) -> Result<u64, RecoveryError> {
    const BATCH: i64 = 1000;
    let mut queues: HashMap<String, Queue> = HashMap::new();
    let mut pushed = 0u64;
    loop {
        let rows: Vec<HistoryRow> = sqlx::query_as(
            "SELECT id, queue, kind, payload, max_attempts FROM job_history
             WHERE id > $1 AND state IN ('scheduled', 'queued', 'running', 'retrying')
             ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(BATCH)
        .fetch_all(db)
        .await?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        for (_, queue, ..) in &rows {
            if !queues.contains_key(queue) {
                queues.insert(
                    queue.clone(),
                    Queue::with_connection(conn.clone(), queue, config.clone()),
                );
            }
        }
        // Jobs Redis still (or already again) has are left alone: those the API accepted
        // after the loss, and any that survived it.
        let mut pipe = redis::pipe();
        for (id, queue, ..) in &rows {
            pipe.exists(queues[queue].job_key(&id.to_string()));
        }
        let present: Vec<bool> = pipe.query_async(conn).await?;
        let lost: Vec<_> = rows
            .into_iter()
            .zip(present)
            .filter_map(|(row, present)| (!present).then_some(row))
            .collect();
        if lost.is_empty() {
            continue;
        }
        // A batch's job goes back into its batch, which would otherwise wait for it forever.
        // Only an unfinished batch can wait for one, and through it the lookup is a probe of
        // `batch_jobs`'s key per batch: 0.9 ms a page of 1,000 against 85 ms for a scan of a
        // million rows of finished batches.
        let batch_of: HashMap<Uuid, Uuid> = sqlx::query_as(
            "SELECT bj.job_id, bj.batch_id FROM batches b JOIN batch_jobs bj ON bj.batch_id = b.id
             WHERE b.finished_at IS NULL AND bj.job_id = ANY($1)",
        )
        .bind(lost.iter().map(|r| r.0).collect::<Vec<_>>())
        .fetch_all(db)
        .await?
        .into_iter()
        .collect();
        for (id, queue, kind, payload, max_attempts) in lost {
            let Some(mut job) = payload.as_ref().and_then(|p| job_for(&kind, p)) else {
                tracing::error!(job.id = %id, %kind, "a lost job without a recorded payload or a known kind cannot be re-derived");
                continue;
            };
            job.id = id.to_string();
            if let Some(max) = max_attempts {
                job.max_attempts = max.max(1) as u32;
            }
            if let Some(batch) = batch_of.get(&id) {
                job = job.batch(batch.to_string());
            }
            queues[&queue].push(job).await?;
            pushed += 1;
        }
    }
    Ok(pushed)
}

/// How far back a restart's re-derivation looks: past the second of writes an `everysec`
/// append-only file may lose, and past a slow history write, with room to spare.
const RESTART_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// How long after the first pass over a new server the second runs: a job the old server
/// accepted just before a failover may reach the history after the first pass read it.
const SECOND_PASS_SECS: i32 = 10;

/// Which pass over a new server is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    First,
    Second,
}

/// After Redis restarted with its data (its append-only file) or failed over to a replica,
/// re-derives the jobs of the last minutes that it lost: with `appendfsync everysec` and a busy
/// disk, Redis answers writes it has not yet written to the file, and a replica lags its
/// primary, so the API may have accepted jobs the new server never got.
///
/// A server is known by its run id, and `redis_runs` holds every one the platform has worked
/// against: one it does not hold is new, whichever process sees it first (one started after the
/// switch too). One process at a time does a pass (a short lock named after the run id, so one
/// killed halfway leaves it to another), and the row says which passes are done. Returns how
/// many jobs were pushed again; `None` when no pass was due or another process has it.
pub async fn recover_after_restart(
    db: &PgPool,
    conn: &mut RedisConn,
    config: &QueueConfig,
    job_for: JobFor,
) -> Result<Option<u64>, RecoveryError> {
    let prefix = config.prefix.as_str();
    let Some(run) = run_id(conn).await? else {
        return Ok(None);
    };
    let known: Option<(bool, bool)> = sqlx::query_as(
        "SELECT second_pass_at IS NULL, first_pass_at <= now() - make_interval(secs => $3)
         FROM redis_runs WHERE prefix = $1 AND run_id = $2",
    )
    .bind(prefix)
    .bind(&run)
    .bind(SECOND_PASS_SECS)
    .fetch_optional(db)
    .await?;
    // The first server a deployment records gets its passes too: a process cannot tell it
    // from one that restarted before anyone recorded the last, and a pass over a server that
    // lost nothing pushes nothing.
    let pass = match known {
        Some((true, true)) => Pass::Second,
        Some(_) => return Ok(None),
        None => Pass::First,
    };
    let lock = format!("{prefix}:epoch:restart:{run}:{pass:?}");
    let mine: bool = redis::cmd("SET")
        .arg(&lock)
        .arg(std::process::id())
        .arg("NX")
        .arg("EX")
        .arg(60)
        .query_async::<Option<String>>(conn)
        .await?
        .is_some();
    if !mine {
        return Ok(None);
    }
    let since = crate::job_ids::first_uuid_v7_at(nightshift_queue::clock::now() - RESTART_WINDOW);
    let n = rederive(db, conn, config, job_for, since).await?;
    mark(db, prefix, &run, pass).await?;
    let _: () = conn.del(&lock).await?;
    if n > 0 {
        tracing::warn!(
            jobs = n,
            "redis restarted or failed over without some accepted jobs: re-derived from the job history"
        );
        metrics::counter!("nightshift_redis_recoveries_total").increment(1);
    }
    Ok(Some(n))
}

/// Records a pass over server `run` as done.
async fn mark(db: &PgPool, prefix: &str, run: &str, pass: Pass) -> Result<(), sqlx::Error> {
    let sql = match pass {
        Pass::First => "INSERT INTO redis_runs (prefix, run_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        Pass::Second => {
            "INSERT INTO redis_runs (prefix, run_id, second_pass_at) VALUES ($1, $2, now())
             ON CONFLICT (prefix, run_id) DO UPDATE SET second_pass_at = now()"
        }
    };
    sqlx::query(sql).bind(prefix).bind(run).execute(db).await?;
    Ok(())
}

/// The running Redis server's run id: a new one means the server restarted or another took over.
async fn run_id(conn: &mut RedisConn) -> Result<Option<String>, redis::RedisError> {
    let info: String = redis::cmd("INFO").arg("server").query_async(conn).await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("run_id:"))
        .map(|v| v.trim().to_string()))
}

/// Runs in every worker: every two seconds, recovers when Redis lost its data wholly (no
/// epoch), or else the last writes before a restart or a failover (a server not yet known).
pub async fn watch(db: PgPool, mut conn: RedisConn, config: QueueConfig, job_for: JobFor) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        match recover_if_lost(&db, &mut conn, &config, job_for).await {
            // While another process re-derives everything, a partial pass would push the same
            // jobs again.
            Ok(Epoch::Lost) => continue,
            Ok(Epoch::Current) => {}
            Err(e) => {
                tracing::warn!(error = %e, "redis epoch check failed; retrying");
                continue;
            }
        }
        if let Err(e) = recover_after_restart(&db, &mut conn, &config, job_for).await {
            tracing::warn!(error = %e, "re-deriving jobs after a redis restart failed; retrying");
        }
    }
}

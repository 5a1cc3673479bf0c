//! The scheduler loop: each pass fires the ticks that are due, records them in the ledger,
//! and applies each schedule's misfire policy to what a stopped scheduler missed.
use std::time::Duration;

use chrono::{DateTime, Utc};
use nightshift_catalog::{
    Queues,
    schedules::{Schedule, ScheduleError, TickOutcome, fire, ledger, target},
};
use nightshift_common::{Config, db};
use nightshift_queue::connect_redis;
use sqlx::PgPool;

pub async fn run(
    config: &Config,
    schedules: Vec<Schedule>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ScheduleError> {
    let conn = connect_redis(&config.redis_url).await?;
    nightshift_queue::clock::follow(conn.clone()).await;
    let queues = Queues::new(conn, &config.queue);
    let pool = db::connect(&config.database_url, 2).await?;
    // Which ticks are due is decided by PostgreSQL's clock, where the ledger is: replicas on
    // hosts whose clocks differ fire each tick at the same true time. This process's clock
    // only measures how long it sleeps.
    let started = ledger::now(&pool).await?;
    tracing::info!(schedules = schedules.len(), "scheduler starting");
    tokio::pin!(shutdown);
    // Per schedule: (how far back this process looks, the newest instant it has passed).
    let mut cursors: Vec<Option<(DateTime<Utc>, DateTime<Utc>)>> = vec![None; schedules.len()];
    loop {
        let now = match ledger::now(&pool).await {
            Ok(now) => now,
            Err(e) => {
                tracing::warn!(error = %e, "scheduler cannot read the database's clock; retrying");
                tokio::select! {
                    _ = &mut shutdown => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
        };
        let measured = std::time::Instant::now();
        for (s, cursor) in schedules.iter().zip(cursors.iter_mut()) {
            if let Err(e) = pass(&pool, &queues, s, cursor, started, now).await {
                // Nothing is recorded for a tick that failed: the next pass finds it due again.
                tracing::warn!(schedule = %s.name, error = %e, "schedule pass failed; retrying next pass");
            }
        }
        let next = schedules.iter().filter_map(|s| s.next_tick(now)).min();
        let wait = next
            .map(|t| {
                (t - now)
                    .to_std()
                    .unwrap_or_default()
                    .saturating_sub(measured.elapsed())
            })
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(60));
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(wait + Duration::from_millis(5)) => {}
        }
    }
}

/// One schedule's due ticks: decided, pushed, recorded.
///
/// Due means not in the ledger, not "after the newest tick in the ledger": a replica whose
/// clock runs ahead records ticks early, and a watermark would let the others jump over the
/// ticks it had not reached. Each pass rechecks the ticks of the last grace period, so
/// replicas whose clocks differ by less than `misfire_grace` never lose one.
async fn pass(
    pool: &PgPool,
    queues: &Queues,
    s: &Schedule,
    cursor: &mut Option<(DateTime<Utc>, DateTime<Utc>)>,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), ScheduleError> {
    let grace = chrono::Duration::from_std(s.misfire_grace).unwrap_or(chrono::Duration::MAX);
    let before = |t: DateTime<Utc>| t.checked_sub_signed(grace).unwrap_or(t);
    // The first pass sets how far back this process looks: to the newest recorded tick after
    // downtime, so the misfire policy meets it; to the grace before its start while other
    // replicas run; to its start for a schedule never recorded (no backfill of history).
    let (floor, last) = match *cursor {
        Some(c) => c,
        None => {
            let floor = match ledger::last_tick(pool, &s.name).await? {
                Some(newest) => newest.min(before(started)),
                None => started,
            };
            (floor, floor)
        }
    };
    let from = last.min(before(now)).max(floor);
    let recorded = ledger::ticks_between(pool, &s.name, from, now).await?;
    let due: Vec<DateTime<Utc>> = s
        .ticks_between(from, now)
        .into_iter()
        .filter(|t| !recorded.contains(t))
        .collect();
    let mut decisions = s.decide(&due, now);
    if !decisions.is_empty() && ledger::is_paused(pool, &s.name).await? {
        decisions.iter_mut().for_each(|d| d.1 = TickOutcome::Skipped);
    }
    for (tick, mut outcome) in decisions {
        let runs = matches!(outcome, TickOutcome::Fired | TickOutcome::FiredLate);
        if runs && !s.allow_overlap && previous_unfinished(pool, queues, s).await? {
            outcome = TickOutcome::Overlapped;
        }
        let job_id = match outcome {
            TickOutcome::Fired | TickOutcome::FiredLate => Some(fire(queues, s, tick).await?),
            _ => None,
        };
        let lag_ms = (now - tick).num_milliseconds();
        if ledger::record(pool, &s.name, tick, outcome, job_id.as_deref(), lag_ms).await? {
            metrics::counter!("nightshift_schedule_ticks_total", "schedule" => s.name.clone(), "outcome" => outcome.as_str())
                .increment(1);
            metrics::histogram!("nightshift_schedule_lag_seconds", "schedule" => s.name.clone())
                .record(lag_ms as f64 / 1e3);
            match outcome {
                TickOutcome::Fired => tracing::info!(schedule = %s.name, %tick, job.id = ?job_id, "tick fired"),
                _ => tracing::warn!(schedule = %s.name, %tick, ?outcome, lag_ms, "tick misfired"),
            }
        }
    }
    *cursor = Some((floor, now.max(last)));
    Ok(())
}

/// Whether the newest run of the schedule is still waiting, running or retrying.
async fn previous_unfinished(pool: &PgPool, queues: &Queues, s: &Schedule) -> Result<bool, ScheduleError> {
    let Some(job) = ledger::last_job(pool, &s.name).await? else {
        return Ok(false);
    };
    let (_, queue) = target(queues, s)?;
    Ok(queue
        .inspect(&job.to_string())
        .await?
        .is_some_and(|r| !r.state.is_final()))
}

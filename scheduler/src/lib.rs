//! The scheduler: fires periodic jobs from cron expressions. Each tick is pushed with a
//! deterministic idempotency key (schedule name + tick instant), so any number of scheduler
//! replicas enqueue it once. The tick ledger in PostgreSQL, misfire and overlap policies and
//! the operator controls are the scheduler issue's; this is the loop they build on.
use std::{str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use nightshift_common::Config;
use nightshift_queue::{QueueError, connect_manager};
use nightshift_workers::{Queues, jobs};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("schedule `{name}`: bad cron expression `{expr}`: {reason}")]
    Cron { name: String, expr: String, reason: String },
    #[error("schedule `{name}`: unknown job kind `{kind}`")]
    UnknownKind { name: String, kind: String },
    #[error("redis: {0}")]
    Redis(#[from] QueueError),
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub cron: cron::Schedule,
    pub tz: Tz,
    pub kind: String,
    pub payload: Value,
}

impl Schedule {
    pub fn new(name: &str, expr: &str, tz: Tz, kind: &str, payload: Value) -> Result<Self, SchedulerError> {
        let cron = cron::Schedule::from_str(expr).map_err(|e| SchedulerError::Cron {
            name: name.into(),
            expr: expr.into(),
            reason: e.to_string(),
        })?;
        if jobs::find(kind).is_none() {
            return Err(SchedulerError::UnknownKind {
                name: name.into(),
                kind: kind.into(),
            });
        }
        Ok(Schedule {
            name: name.into(),
            cron,
            tz,
            kind: kind.into(),
            payload,
        })
    }

    /// The latest tick in (after, until], if any: after downtime one catch-up run, not a burst.
    pub fn latest_tick(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .after(&after.with_timezone(&self.tz))
            .take_while(|t| t.with_timezone(&Utc) <= until)
            .last()
            .map(|t| t.with_timezone(&Utc))
    }

    pub fn next_tick(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .after(&after.with_timezone(&self.tz))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The idempotency key of one tick: equal on every replica.
    pub fn tick_key(&self, tick: DateTime<Utc>) -> String {
        format!("schedule:{}:{}", self.name, tick.timestamp())
    }
}

/// The platform's default schedules. `canary` enqueues a no-op every minute: if its jobs stop
/// succeeding, the scheduler-to-worker path is broken, whatever else looks green.
pub fn defaults() -> Result<Vec<Schedule>, SchedulerError> {
    Ok(vec![Schedule::new(
        "canary",
        "0 * * * * *",
        Tz::UTC,
        "noop",
        json!({}),
    )?])
}

pub async fn run(
    config: &Config,
    schedules: Vec<Schedule>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), SchedulerError> {
    let conn = connect_manager(&config.redis_url).await?;
    let queues = Queues::new(conn, &config.queue);
    let mut last = Utc::now();
    tracing::info!(schedules = schedules.len(), "scheduler starting");
    tokio::pin!(shutdown);
    loop {
        let now = Utc::now();
        for s in &schedules {
            if let Some(tick) = s.latest_tick(last, now) {
                fire(&queues, s, tick).await;
            }
        }
        last = now;
        let next = schedules.iter().filter_map(|s| s.next_tick(now)).min();
        let wait = next
            .map(|t| (t - Utc::now()).to_std().unwrap_or_default())
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(60));
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(wait + Duration::from_millis(5)) => {}
        }
    }
}

async fn fire(queues: &Queues, s: &Schedule, tick: DateTime<Utc>) {
    let (Some(spec), Some(queue)) = (jobs::find(&s.kind), queues.for_kind(&s.kind)) else {
        return;
    };
    let job = spec.new_job(&s.payload).idempotency_key(s.tick_key(tick));
    match queue.push(job).await {
        Ok(id) => tracing::info!(schedule = %s.name, %tick, job.id = %id, "tick enqueued"),
        // The next loop does not retry an old tick; the scheduler issue adds the misfire ledger.
        Err(e) => tracing::error!(schedule = %s.name, %tick, error = %e, "tick not enqueued"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn after_downtime_only_the_latest_missed_tick_fires() {
        let s = Schedule::new("t", "0 */5 * * * *", Tz::UTC, "noop", json!({})).unwrap();
        let from = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        let until = Utc.with_ymd_and_hms(2026, 1, 1, 10, 17, 0).unwrap();
        assert_eq!(
            s.latest_tick(from, until),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 10, 15, 0).unwrap())
        );
        assert_eq!(s.latest_tick(until, until), None);
    }

    #[test]
    fn tick_keys_are_the_same_on_every_replica_and_differ_per_tick() {
        let s = Schedule::new(
            "nightly",
            "0 0 2 * * *",
            "Europe/Paris".parse().unwrap(),
            "noop",
            json!({}),
        )
        .unwrap();
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 1, 0, 0).unwrap();
        assert_eq!(s.tick_key(t), s.tick_key(t));
        assert_ne!(s.tick_key(t), s.tick_key(t + chrono::Duration::days(1)));
        // 02:00 in Paris in winter is 01:00 UTC.
        assert_eq!(s.next_tick(t - chrono::Duration::hours(1)), Some(t));
    }

    #[test]
    fn bad_cron_and_unknown_kinds_are_refused_with_the_schedule_name() {
        let e = Schedule::new("x", "not cron", Tz::UTC, "noop", json!({})).unwrap_err();
        assert!(e.to_string().contains("schedule `x`"));
        assert!(Schedule::new("y", "0 * * * * *", Tz::UTC, "nope", json!({})).is_err());
    }
}

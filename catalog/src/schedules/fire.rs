//! Pushing a schedule's job: a tick's (keyed by the schedule and the tick, so replicas that
//! fire the same tick make one job) and an operator's "run now" (unkeyed).
use chrono::{DateTime, Utc};
use nightshift_queue::Queue;

use super::{Schedule, ScheduleError};
use crate::{KindSpec, Queues};

/// Enqueues the schedule's job outside its cron (an operator's "run now").
pub async fn run_now(queues: &Queues, s: &Schedule) -> Result<String, ScheduleError> {
    let (spec, queue) = target(queues, s)?;
    Ok(queue.push(spec.new_job(&s.payload)).await?)
}

/// The schedule's kind and the queue its jobs go to.
pub fn target<'a>(queues: &'a Queues, s: &Schedule) -> Result<(&'static KindSpec, &'a Queue), ScheduleError> {
    // Checked when the file was parsed; a kind can only vanish with a new build.
    let spec = crate::find(&s.kind).ok_or_else(|| ScheduleError::UnknownKind {
        name: s.name.clone(),
        kind: s.kind.clone(),
    })?;
    Ok((spec, queues.for_spec(spec)))
}

/// Pushes the job of `tick`, with the schedule's jitter as its delay.
pub async fn fire(queues: &Queues, s: &Schedule, tick: DateTime<Utc>) -> Result<String, ScheduleError> {
    let (spec, queue) = target(queues, s)?;
    let mut job = spec
        .new_job(&s.payload)
        .idempotency_key(crate::platform_key(s.tick_key(tick)));
    let jitter = s.jitter_for(tick);
    if !jitter.is_zero() {
        job = job.delay(jitter);
    }
    Ok(queue.push(job).await?)
}

//! A running job's progress, as its handler reports it: at most one write a second per job
//! (the last report, 100 %, always goes), nothing at all for a handler that never reports.
use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use nightshift_queue::{Job, Queue};

use super::JobEnv;

/// Writes closer together than this are dropped, but for the last.
const EVERY: Duration = Duration::from_secs(1);

pub struct Progress<'a> {
    queue: Option<&'a Queue>,
    db: &'a sqlx::PgPool,
    job: &'a Job,
    last: Mutex<Option<Instant>>,
}

impl<'a> Progress<'a> {
    pub fn of(env: &'a JobEnv, job: &'a Job) -> Self {
        Progress {
            queue: env.queues.get(&job.queue),
            db: &env.db,
            job,
            last: Mutex::new(None),
        }
    }

    /// Reports `percent` (0 to 100) and what the job is doing. A failure to write is logged,
    /// never the job's failure: progress is for people watching.
    pub async fn report(&self, percent: u8, message: &str) {
        let now = Instant::now();
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if !due(*last, now, percent) {
                return;
            }
            *last = Some(now);
        }
        let Some(queue) = self.queue else { return };
        if let Err(e) = queue.report_progress(self.job, percent, message).await {
            tracing::warn!(job.id = %self.job.id, error = %e, "progress not recorded");
        }
        // Kept with the history too, for after Redis lets the job go: one update a second at
        // most, only for jobs that report.
        let message: String = message.chars().take(nightshift_queue::PROGRESS_MESSAGE_MAX).collect();
        if let Ok(id) = uuid::Uuid::parse_str(&self.job.id)
            && let Err(e) = nightshift_common::history::record_progress(self.db, id, percent, &message).await
        {
            tracing::warn!(job.id = %self.job.id, error = %e, "progress not kept in the history");
        }
    }
}

/// Whether a report at `now` is written: the first, the last (100 %), or one a second.
fn due(last: Option<Instant>, now: Instant, percent: u8) -> bool {
    percent >= 100 || last.is_none_or(|l| now.duration_since(l) >= EVERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_coalesced_to_one_a_second_but_the_first_and_last_always_go() {
        let t0 = Instant::now();
        assert!(due(None, t0, 0));
        assert!(!due(Some(t0), t0 + Duration::from_millis(300), 40));
        assert!(due(Some(t0), t0 + Duration::from_millis(1000), 41));
        assert!(due(Some(t0), t0 + Duration::from_millis(10), 100));
    }
}

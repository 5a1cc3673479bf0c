//! A running job's progress, as its handler reports it: at most one write a second per job
//! (the last report, 100 %, always goes), nothing at all for a handler that never reports.
//! Redis has it at once, for `GET /v1/jobs/{id}` and the dashboard while the job runs; the
//! history keeps it for after, through one writer per process that batches every job's
//! reports, so jobs never wait on a PostgreSQL commit to report.
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use nightshift_queue::{Job, Queue};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::JobEnv;

/// Writes closer together than this are dropped, but for the last.
const EVERY: Duration = Duration::from_secs(1);
/// Reports waiting for the history writer before reporting jobs wait for it.
const BACKLOG: usize = 10_000;
const BATCH: usize = 1000;

type Report = (Uuid, u8, String, DateTime<Utc>);

/// The sending end of the history's progress writer.
#[derive(Clone)]
pub struct ProgressHistory(mpsc::Sender<Report>);

impl ProgressHistory {
    /// Starts the writer; it ends once every sender is dropped.
    pub fn spawn(db: sqlx::PgPool) -> Self {
        let (tx, rx) = mpsc::channel(BACKLOG);
        tokio::spawn(write_loop(db, rx));
        ProgressHistory(tx)
    }
}

async fn write_loop(db: sqlx::PgPool, mut rx: mpsc::Receiver<Report>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        // Each job's newest report: the channel keeps their order.
        let newest: HashMap<Uuid, Report> = batch.drain(..).map(|r| (r.0, r)).collect();
        let reports: Vec<Report> = newest.into_values().collect();
        // Progress is for people watching: a failed write is logged, not retried, and the
        // job's next report writes again.
        if let Err(e) = nightshift_common::history::record_progress(&db, &reports).await {
            tracing::warn!(error = %e, reports = reports.len(), "progress not kept in the history");
        }
    }
}

pub struct Progress<'a> {
    queue: Option<&'a Queue>,
    history: &'a ProgressHistory,
    job: &'a Job,
    last: Mutex<Option<Instant>>,
}

impl<'a> Progress<'a> {
    pub fn of(env: &'a JobEnv, job: &'a Job) -> Self {
        Progress {
            queue: env.queues.get(&job.queue),
            history: &env.progress,
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
        let message: String = message.chars().take(nightshift_queue::PROGRESS_MESSAGE_MAX).collect();
        if let Ok(id) = Uuid::parse_str(&self.job.id) {
            // Waits only when the writer is thousands of reports behind.
            let _ = self
                .history
                .0
                .send((id, percent, message, nightshift_queue::clock::now()))
                .await;
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

//! Group commit for the enqueue path. Requests that arrive together share one statement and
//! one commit: while one write is in flight, the records of the requests that come meanwhile
//! gather, and the next write takes them all (up to `MAX_JOBS`). No request waits for a timer;
//! under load, each write carries more. Each request is answered only for its own records,
//! once they are committed.
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::{Submitted, record_enqueued};

/// Requests waiting for the writer, at most; past it, a request waits for room.
const QUEUE: usize = 4096;
/// Jobs in one statement, at most (a whole batch request is never split across two).
const MAX_JOBS: usize = 2000;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordError {
    /// The write failed; every request of the group hears of it.
    #[error("postgres: {0}")]
    Database(Arc<sqlx::Error>),
    #[error("the history recorder has stopped")]
    Stopped,
}

impl RecordError {
    /// True when PostgreSQL was unreachable, rather than refusing the rows.
    pub fn is_unavailable(&self) -> bool {
        match self {
            RecordError::Stopped => true,
            RecordError::Database(e) => matches!(
                **e,
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            ),
        }
    }
}

type Request = (Vec<Submitted>, oneshot::Sender<Result<(), RecordError>>);

/// A handle to the process's one group-commit writer.
#[derive(Clone, Debug)]
pub struct GroupRecorder {
    tx: mpsc::Sender<Request>,
}

impl GroupRecorder {
    /// Starts the writer; it ends when every handle is dropped.
    pub fn spawn(pool: PgPool) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx));
        GroupRecorder { tx }
    }

    /// Records these jobs, with whatever other requests are waiting; returns once they are
    /// committed (or the write failed).
    pub async fn record(&self, jobs: Vec<Submitted>) -> Result<(), RecordError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        self.tx.send((jobs, done)).await.map_err(|_| RecordError::Stopped)?;
        answer.await.map_err(|_| RecordError::Stopped)?
    }
}

async fn run(pool: PgPool, mut rx: mpsc::Receiver<Request>) {
    let mut waiting: Vec<Request> = Vec::new();
    while let Some(first) = rx.recv().await {
        waiting.push(first);
        let mut jobs: usize = waiting[0].0.len();
        // Whatever else is already waiting joins this write, within the bound.
        while jobs < MAX_JOBS {
            match rx.try_recv() {
                Ok(next) => {
                    jobs += next.0.len();
                    waiting.push(next);
                }
                Err(_) => break,
            }
        }
        let result = record_enqueued(&pool, waiting.iter().flat_map(|(j, _)| j))
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, jobs, requests = waiting.len(), "recording accepted jobs failed");
                RecordError::Database(Arc::new(e))
            });
        metrics::histogram!("nightshift_api_record_group_jobs").record(jobs as f64);
        for (_, done) in waiting.drain(..) {
            // A request that gave up (its client went away) needs no answer.
            let _ = done.send(result.clone());
        }
    }
}

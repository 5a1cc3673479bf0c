//! Group commit: rows of requests that arrive together share one statement and one commit.
//! While one write is in flight, the rows of the requests that come meanwhile gather, and the
//! next write takes them all (up to `MAX_ROWS`). No request waits for a timer; under load,
//! each write carries more. Each request is answered only once its own rows are committed, and
//! a group whose rows PostgreSQL refuses is written again request by request, so one bad row
//! fails only its own request.
//! The enqueue path's history records and the API's audit rows go through one each.
use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the writer, at most; past it, a request waits for room.
const QUEUE: usize = 4096;
/// Rows in one statement, at most (one request's rows are never split across two).
const MAX_ROWS: usize = 2000;

/// Rows a [`GroupWriter`] can write many at a time, in one statement.
pub trait Rows: Send + Sync + 'static {
    fn write<'a>(pool: &'a PgPool, rows: Vec<&'a Self>) -> BoxFuture<'a, Result<(), sqlx::Error>>;
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum GroupError {
    /// The write failed; every request of the group hears of it.
    #[error("postgres: {0}")]
    Database(Arc<sqlx::Error>),
    #[error("the group writer has stopped")]
    Stopped,
}

impl GroupError {
    /// True when PostgreSQL was unreachable, rather than refusing the rows.
    pub fn is_unavailable(&self) -> bool {
        match self {
            GroupError::Stopped => true,
            GroupError::Database(e) => matches!(
                **e,
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            ),
        }
    }
}

type Request<T> = (Vec<T>, oneshot::Sender<Result<(), GroupError>>);

/// A handle to one group-commit writer of `T` rows.
pub struct GroupWriter<T> {
    tx: mpsc::Sender<Request<T>>,
}

impl<T> Clone for GroupWriter<T> {
    fn clone(&self) -> Self {
        GroupWriter { tx: self.tx.clone() }
    }
}

impl<T> std::fmt::Debug for GroupWriter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupWriter").finish_non_exhaustive()
    }
}

impl<T: Rows> GroupWriter<T> {
    /// Starts the writer; it ends when every handle is dropped. `name` labels its metrics.
    pub fn spawn(pool: PgPool, name: &'static str) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx, name));
        GroupWriter { tx }
    }

    /// Writes these rows, with whatever other requests are waiting; returns once they are
    /// committed (or the write failed).
    pub async fn write(&self, rows: Vec<T>) -> Result<(), GroupError> {
        if rows.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        self.tx.send((rows, done)).await.map_err(|_| GroupError::Stopped)?;
        answer.await.map_err(|_| GroupError::Stopped)?
    }
}

async fn run<T: Rows>(pool: PgPool, mut rx: mpsc::Receiver<Request<T>>, name: &'static str) {
    let mut waiting: Vec<Request<T>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut rows = first.0.len();
        waiting.push(first);
        // Whatever else is already waiting joins this write, within the bound.
        while rows < MAX_ROWS {
            match rx.try_recv() {
                Ok(next) => {
                    rows += next.0.len();
                    waiting.push(next);
                }
                Err(_) => break,
            }
        }
        metrics::histogram!("nightshift_group_commit_rows", "writer" => name).record(rows as f64);
        let result = T::write(&pool, waiting.iter().flat_map(|(r, _)| r).collect()).await;
        // PostgreSQL refusing a row (a constraint, a bad value) is that row's request's failure;
        // anything else (unreachable, timed out) is everyone's, and retrying it request by
        // request would only make each wait out the outage in turn.
        if let Err(e @ sqlx::Error::Database(_)) = &result
            && waiting.len() > 1
        {
            // One request's bad row must not fail the others: each is written on its own, and
            // hears only of its own rows.
            tracing::warn!(error = %e, writer = name, rows, requests = waiting.len(), "group write failed; writing each request alone");
            for (rows, done) in waiting.drain(..) {
                let alone = T::write(&pool, rows.iter().collect()).await;
                let _ = done.send(alone.map_err(|e| GroupError::Database(Arc::new(e))));
            }
            continue;
        }
        let result = result.map_err(|e| {
            tracing::warn!(error = %e, writer = name, rows, "group write failed");
            GroupError::Database(Arc::new(e))
        });
        for (_, done) in waiting.drain(..) {
            // A request that gave up (its client went away) needs no answer.
            let _ = done.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::test_db::TestDb;

    /// A row of a test table that refuses values below 1.
    struct Positive(i32);

    impl Rows for Positive {
        fn write<'a>(pool: &'a PgPool, rows: Vec<&'a Self>) -> BoxFuture<'a, Result<(), sqlx::Error>> {
            Box::pin(async move {
                let values: Vec<i32> = rows.iter().map(|r| r.0).collect();
                sqlx::query("INSERT INTO positive SELECT UNNEST($1::int[])")
                    .bind(&values)
                    .execute(pool)
                    .await
                    .map(drop)
            })
        }
    }

    #[tokio::test]
    async fn one_requests_bad_row_fails_only_that_request_and_the_others_are_written() {
        let db = TestDb::create().await;
        let pool = db.pool().await;
        sqlx::query("CREATE TABLE positive (v int CHECK (v > 0))")
            .execute(&pool)
            .await
            .unwrap();
        let writer = GroupWriter::spawn(pool.clone(), "test");
        // On this single-threaded runtime all three are queued before the writer runs, so they
        // form one group, which the bad row fails as a whole.
        let (a, b, c) = tokio::join!(
            writer.write(vec![Positive(1), Positive(2)]),
            writer.write(vec![Positive(-1)]),
            writer.write(vec![Positive(3)]),
        );
        assert!(a.is_ok() && c.is_ok(), "{a:?} {c:?}");
        assert!(matches!(b, Err(GroupError::Database(_))), "{b:?}");
        let stored: Vec<i32> = sqlx::query_scalar("SELECT v FROM positive ORDER BY v")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(stored, vec![1, 2, 3]);
    }
}

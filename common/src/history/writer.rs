//! The batched history writer: one upsert per batch, a job reported twice split over two
//! statements, a row PostgreSQL refuses split out and skipped, transient errors retried.
use std::{borrow::Cow, collections::HashSet, time::Duration};

use nightshift_queue::{AttemptReport, Backoff};
use sqlx::PgPool;
use tokio::{sync::mpsc, task::JoinHandle};
use uuid::Uuid;

use super::{
    sanitize::{json_or_none, safe_text},
    ts,
};

const BATCH: usize = 2000;
/// Reports buffered before the workers feel backpressure: history is a record, never dropped.
pub const CHANNEL_CAPACITY: usize = 50_000;

/// Starts the writer. It ends, after flushing, once every sender is dropped. One writer, on
/// purpose: the machine is CPU-bound at these rates, and parallel upserts were measured
/// slower (20k vs 27k jobs/s) because they starve Redis and the worker of CPU.
pub fn spawn_writer(pool: PgPool) -> (mpsc::Sender<AttemptReport>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    (tx, tokio::spawn(write_loop(pool, rx)))
}

async fn write_loop(pool: PgPool, mut rx: mpsc::Receiver<AttemptReport>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        // Made safe once, outside the retries: each value is logged and counted once.
        let rows = prepare(&batch);
        let mut failures = 0u32;
        while let Err(e) = write_rows(&pool, &rows).await {
            failures += 1;
            tracing::warn!(error = %e, rows = rows.len(), "job history write failed; retrying");
            const WRITE: Backoff = Backoff {
                base: Duration::from_millis(200),
                max: Duration::from_millis(6400),
            };
            tokio::time::sleep(WRITE.ceiling(failures)).await;
        }
        drop(rows); // it borrows the batch
        batch.clear();
    }
}

/// Writes reports. A row PostgreSQL refuses is skipped (see `write_parts`); the error returned
/// is a transient one (connection, pool, server shutting down), after which the caller may
/// write the batch again.
pub async fn write_batch(pool: &PgPool, reports: &[AttemptReport]) -> Result<(), sqlx::Error> {
    write_rows(pool, &prepare(reports)).await
}

/// A job reported twice in one batch is written in two statements, because one upsert may not
/// touch the same row twice.
async fn write_rows(pool: &PgPool, rows: &[Row<'_>]) -> Result<(), sqlx::Error> {
    let mut rest: Vec<&Row<'_>> = rows.iter().collect();
    while !rest.is_empty() {
        let mut seen = HashSet::new();
        let (now, later): (Vec<&Row<'_>>, Vec<&Row<'_>>) = rest.into_iter().partition(|r| seen.insert(r.id));
        write_parts(pool, &now).await?;
        rest = later;
    }
    Ok(())
}

/// Retrying a batch that PostgreSQL refuses for one of its rows would wedge the history for
/// every later job. Such a batch is halved until the refused rows are alone, and those are
/// skipped; everything else in it is written. Transient errors are returned, not split: the
/// rows are fine, the database is not.
async fn write_parts(pool: &PgPool, rows: &[&Row<'_>]) -> Result<(), sqlx::Error> {
    let mut parts = vec![rows];
    while let Some(part) = parts.pop() {
        match upsert(pool, part).await {
            Ok(()) => {}
            Err(e) if is_transient(&e) => return Err(e),
            Err(e) => match part {
                [row] => {
                    metrics::counter!("nightshift_history_rows_dropped_total").increment(1);
                    tracing::error!(job.id = %row.report.id, error = %e, "job history row refused by PostgreSQL; skipped");
                }
                _ => {
                    let (first, second) = part.split_at(part.len() / 2);
                    // A stack: the first half is written first, keeping the batch's order.
                    parts.extend([second, first]);
                }
            },
        }
    }
    Ok(())
}

/// Errors that may say nothing about the rows, so the same statement may succeed later: every
/// error but the ones a value causes. Only those (SQLSTATE class 22 data exception: a NUL, an
/// overflow; 23 integrity constraint violation; 54 program limit exceeded) split a batch and
/// drop a row: a read-only failover, a permission or a missing table must not empty the
/// history, it waits for the database to be right again.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => !db
            .code()
            .is_some_and(|code| matches!(code.get(..2), Some("22" | "23" | "54"))),
        _ => true,
    }
}

/// A report as PostgreSQL accepts it. Values borrow from the report unless they had to be
/// made safe, which is rare: the writer copies no string on its hot path.
struct Row<'a> {
    id: Uuid,
    report: &'a AttemptReport,
    queue: Cow<'a, str>,
    kind: Cow<'a, str>,
    payload: Option<Cow<'a, str>>,
    error: Option<Cow<'a, str>>,
    result: Option<Cow<'a, str>>,
    worker: Cow<'a, str>,
}

fn prepare(reports: &[AttemptReport]) -> Vec<Row<'_>> {
    reports
        .iter()
        .filter_map(|r| {
            let Ok(id) = Uuid::parse_str(&r.id) else {
                tracing::warn!(job.id = %r.id, "job id is not a UUID; not recorded in history");
                return None;
            };
            let id_text = r.id.as_str();
            Some(Row {
                id,
                report: r,
                queue: safe_text(id_text, "queue", &r.queue),
                kind: safe_text(id_text, "kind", &r.kind),
                payload: r.payload.as_deref().and_then(|p| json_or_none(id_text, "payload", p)),
                error: r.error.as_deref().map(|e| safe_text(id_text, "error", e)),
                result: r.result.as_deref().and_then(|p| json_or_none(id_text, "result", p)),
                worker: safe_text(id_text, "worker", &r.worker),
            })
        })
        .collect()
}

async fn upsert(pool: &PgPool, rows: &[&Row<'_>]) -> Result<(), sqlx::Error> {
    let mut ids = Vec::with_capacity(rows.len());
    let (mut queues, mut kinds, mut payloads, mut states) = (vec![], vec![], vec![], vec![]);
    let (mut attempts, mut maxes, mut created, mut started, mut finished) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut errors, mut results, mut workers) = (vec![], vec![], vec![]);
    for row in rows {
        let r = row.report;
        ids.push(row.id);
        queues.push(&*row.queue);
        kinds.push(&*row.kind);
        payloads.push(row.payload.as_deref());
        states.push(r.state.as_str());
        attempts.push(r.attempt as i32);
        maxes.push(r.max_attempts.map(|m| m as i32));
        created.push(r.created_at_ms.map(ts));
        started.push(r.started_at_ms.map(ts));
        finished.push(ts(r.finished_at_ms));
        errors.push(row.error.as_deref());
        results.push(row.result.as_deref());
        workers.push(&*row.worker);
    }
    // Reports from different processes can arrive out of order: a later attempt wins.
    sqlx::query(
        r#"
        INSERT INTO job_history AS h (id, queue, kind, payload, state, attempts, max_attempts,
            created_at, started_at, finished_at, error, result, worker, events)
        SELECT u.id, u.queue, u.kind, u.payload::jsonb, u.state, u.attempts, u.max_attempts,
            COALESCE(u.created_at, u.finished_at), u.started_at,
            CASE WHEN u.state IN ('succeeded', 'dead', 'cancelled') THEN u.finished_at END,
            u.error, u.result::jsonb, u.worker,
            CASE WHEN u.state = 'succeeded' AND u.attempts = 1 THEN '[]'::jsonb
                ELSE jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('state', u.state,
                    'attempt', u.attempts, 'at', u.finished_at, 'error', u.error, 'worker', u.worker)))
            END
        FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[],
            $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::text[], $13::text[])
            AS u(id, queue, kind, payload, state, attempts, max_attempts, created_at, started_at,
                 finished_at, error, result, worker)
        ON CONFLICT (id) DO UPDATE SET
            state = EXCLUDED.state,
            attempts = EXCLUDED.attempts,
            max_attempts = COALESCE(EXCLUDED.max_attempts, h.max_attempts),
            -- What ran: a debounced job's last request replaced the payload it was recorded with.
            payload = COALESCE(EXCLUDED.payload, h.payload),
            started_at = COALESCE(EXCLUDED.started_at, h.started_at),
            finished_at = EXCLUDED.finished_at,
            error = EXCLUDED.error,
            result = EXCLUDED.result,
            worker = EXCLUDED.worker,
            events = h.events || EXCLUDED.events
        WHERE h.attempts <= EXCLUDED.attempts
        "#,
    )
    .bind(&ids)
    .bind(&queues)
    .bind(&kinds)
    .bind(&payloads)
    .bind(&states)
    .bind(&attempts)
    .bind(&maxes)
    .bind(&created)
    .bind(&started)
    .bind(&finished)
    .bind(&errors)
    .bind(&results)
    .bind(&workers)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{super::test_db::TestDb, *};
    use chrono::Utc;
    use nightshift_queue::JobState;
    use serde_json::json;

    fn report(kind: &str) -> AttemptReport {
        let now = Utc::now().timestamp_millis();
        AttemptReport {
            id: Uuid::new_v4().to_string(),
            queue: "default".into(),
            kind: kind.into(),
            payload: Some("{}".into()),
            state: JobState::Succeeded,
            attempt: 1,
            max_attempts: Some(3),
            created_at_ms: Some(now),
            started_at_ms: Some(now),
            finished_at_ms: now,
            error: None,
            result: None,
            worker: "w1".into(),
        }
    }

    async fn ids_in_history(pool: &PgPool) -> HashSet<String> {
        sqlx::query_scalar::<_, String>("SELECT id::text FROM job_history")
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .collect()
    }

    #[tokio::test]
    async fn nul_in_texts_and_json_is_replaced_and_the_batch_written() {
        let db = TestDb::create().await;
        let pool = db.pool().await;
        let mut texts = report("send\0mail");
        texts.state = JobState::Retrying;
        texts.error = Some("webhook answered 502: <html>\0</html>".into());
        texts.worker = "w\0".into();
        texts.queue = "mail\0".into();
        let mut json = report("noop");
        json.payload = Some(r#"{"p": "x\u0000y", "k\u0000": ["\u0000"]}"#.into());
        json.result = Some(r#""\u0000""#.into());
        // An escaped backslash before "u0000" is no NUL: the text is kept as it came.
        let mut lookalike = report("noop");
        lookalike.payload = Some(r#"{"t": "\\u0000"}"#.into());
        let batch = [
            report("noop"),
            texts.clone(),
            json.clone(),
            lookalike.clone(),
            report("noop"),
        ];

        write_batch(&pool, &batch).await.unwrap();

        let expected: HashSet<String> = batch.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids_in_history(&pool).await, expected);
        let (queue, kind, error, worker, events): (String, String, String, String, serde_json::Value) =
            sqlx::query_as("SELECT queue, kind, error, worker, events FROM job_history WHERE id = $1::uuid")
                .bind(&texts.id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(queue, "mail\u{FFFD}");
        assert_eq!(kind, "send\u{FFFD}mail");
        assert_eq!(error, "webhook answered 502: <html>\u{FFFD}</html>");
        assert_eq!(worker, "w\u{FFFD}");
        assert_eq!(events[0]["error"], json!(error));
        let (payload, result): (serde_json::Value, serde_json::Value) =
            sqlx::query_as("SELECT payload, result FROM job_history WHERE id = $1::uuid")
                .bind(&json.id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(payload, json!({"p": "x\u{FFFD}y", "k\u{FFFD}": ["\u{FFFD}"]}));
        assert_eq!(result, json!("\u{FFFD}"));
        let payload: serde_json::Value = sqlx::query_scalar("SELECT payload FROM job_history WHERE id = $1::uuid")
            .bind(&lookalike.id)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(payload, json!({"t": "\\u0000"}));
    }

    #[tokio::test]
    async fn a_row_postgres_refuses_is_skipped_and_the_rest_of_its_batch_written() {
        let db = TestDb::create().await;
        let pool = db.pool().await;
        // The schema's CHECK (max_attempts >= 1): nothing in the row can be made safe.
        let mut poison = report("poison");
        poison.max_attempts = Some(0);
        // Reported twice: written in a second statement, which must survive the split too.
        let mut first = report("noop");
        first.state = JobState::Retrying;
        first.error = Some("timeout".into());
        let mut second = first.clone();
        second.state = JobState::Succeeded;
        second.attempt = 2;
        second.error = None;
        let batch = [
            report("noop"),
            first.clone(),
            report("noop"),
            poison.clone(),
            report("noop"),
            second,
            report("noop"),
        ];

        write_batch(&pool, &batch).await.unwrap();

        let expected: HashSet<String> = batch
            .iter()
            .filter(|r| r.id != poison.id)
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(ids_in_history(&pool).await, expected);
        let (state, attempts): (String, i32) =
            sqlx::query_as("SELECT state, attempts FROM job_history WHERE id = $1::uuid")
                .bind(&first.id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!((state.as_str(), attempts), ("succeeded", 2));
    }
}

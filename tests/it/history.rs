//! Job history partitioned by day: the migration from the single table keeps every row, and
//! retention drops exactly the days past it.
use std::{borrow::Cow, time::Duration};

use chrono::{DateTime, Days, Utc};
use nightshift_common::{
    auth::Scope,
    db,
    history::{self, partitions},
};
use serde_json::json;
use sqlx::migrate::Migrator;
use uuid::Uuid;

use crate::support::*;

/// A UUIDv7 of the instant `t`, as the queue makes them.
fn id_at(t: DateTime<Utc>) -> Uuid {
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        t.timestamp() as u64,
        t.timestamp_subsec_nanos(),
    ))
}

async fn insert(pool: &sqlx::PgPool, id: Uuid, state: &str, created: DateTime<Utc>) {
    sqlx::query(
        "INSERT INTO job_history (id, queue, kind, payload, state, attempts, created_at, events)
         VALUES ($1, 'default', 'noop', $2, $3, 1, $4, $5)",
    )
    .bind(id)
    .bind(json!({"n": id.to_string()}))
    .bind(state)
    .bind(created)
    .bind(json!([{"state": state, "attempt": 1}]))
    .execute(pool)
    .await
    .unwrap();
}

/// Every row, as text, in id order: equal before and after means nothing was lost or altered.
async fn table_digest(pool: &sqlx::PgPool) -> (i64, String) {
    sqlx::query_as("SELECT count(*), md5(string_agg(h::text, '|' ORDER BY id)) FROM job_history h")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn partition_of(pool: &sqlx::PgPool, id: Uuid) -> String {
    sqlx::query_scalar("SELECT tableoid::regclass::text FROM job_history WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn partitioning_migration_keeps_every_row_of_the_single_table() {
    let db = TestDb::empty().await;
    let pool = db.pool().await;
    let before = Migrator {
        migrations: Cow::Owned(db::MIGRATOR.iter().filter(|m| m.version < 12).cloned().collect()),
        ..Migrator::DEFAULT
    };
    before.run(&pool).await.unwrap();
    let now = Utc::now();
    let mut three_days_ago = None;
    for days in [3, 1, 0] {
        for i in 0..100 {
            let t = now - chrono::Duration::days(days) - chrono::Duration::seconds(i);
            let id = id_at(t);
            insert(&pool, id, if i % 7 == 0 { "retrying" } else { "succeeded" }, t).await;
            if days == 3 {
                three_days_ago.get_or_insert(id);
            }
        }
    }
    let ancient = id_at(now - chrono::Duration::days(500));
    insert(&pool, ancient, "dead", now - chrono::Duration::days(500)).await;
    let not_v7 = Uuid::new_v4();
    insert(&pool, not_v7, "queued", now).await;
    let digest = table_digest(&pool).await;
    assert_eq!(digest.0, 302);

    // Through the partitioning migration only: later ones add columns, which would change
    // every row's text without touching its data.
    let through = Migrator {
        migrations: Cow::Owned(db::MIGRATOR.iter().filter(|m| m.version <= 12).cloned().collect()),
        ..Migrator::DEFAULT
    };
    through.run(&pool).await.unwrap();

    assert_eq!(table_digest(&pool).await, digest, "every row, unchanged");
    let day = (now - chrono::Duration::days(3)).format("%Y%m%d");
    assert_eq!(
        partition_of(&pool, three_days_ago.unwrap()).await,
        format!("job_history_p{day}")
    );
    assert_eq!(
        partition_of(&pool, ancient).await,
        "job_history_default",
        "older than the 400 days the migration makes partitions for"
    );
    let partitioned: bool = sqlx::query_scalar("SELECT relkind = 'p' FROM pg_class WHERE relname = 'job_history'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(partitioned);
}

#[tokio::test]
async fn retention_drops_the_days_past_it_whole_and_keeps_unfinished_jobs() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    let now = Utc::now();
    let today = now.date_naive();
    partitions::ensure(&pool, today - Days::new(40), today).await.unwrap();
    let mut jobs = Vec::new();
    for days in [40, 35, 31, 29, 2] {
        let t = now - chrono::Duration::days(days);
        let id = id_at(t);
        insert(&pool, id, "succeeded", t).await;
        jobs.push((days, id));
    }
    let retrying = id_at(now - chrono::Duration::days(40) + chrono::Duration::seconds(1));
    insert(&pool, retrying, "retrying", now - chrono::Duration::days(40)).await;
    // A day with no partition: its row sits in the default partition and goes by row.
    let stray_t: DateTime<Utc> = "1999-12-31T12:00:00Z".parse().unwrap();
    let stray = id_at(stray_t);
    insert(&pool, stray, "dead", stray_t).await;
    assert_eq!(partition_of(&pool, stray).await, "job_history_default");

    let app = App::start(&config(&redis, &db), true).await;
    let admin = token(&[Scope::JobsWrite, Scope::JobsRead, Scope::Admin]);
    let id = app
        .enqueue_id(
            &admin,
            json!({"kind": "maintenance.cleanup", "payload": {"history_days": 30}}),
        )
        .await;
    let done = app.wait_state(&admin, &id, "succeeded", Duration::from_secs(30)).await;
    assert_eq!(
        done["result"]["deleted"]["job_history"], 4,
        "days 40, 35 and 31, and the stray row: {done}"
    );

    let days: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'job_history'::regclass AND c.relname <> 'job_history_default' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let cutoff = (now - chrono::Duration::days(30)).date_naive();
    let expected: Vec<String> = cutoff
        .iter_days()
        .take_while(|d| *d <= today + Days::new(partitions::DAYS_AHEAD))
        .map(|d| d.format("job_history_p%Y%m%d").to_string())
        .collect();
    assert_eq!(days, expected, "the days before the cutoff dropped, a week ahead made");

    for (days, job) in jobs {
        let status = app.status(&admin, &job.to_string()).await.status();
        assert_eq!(status, if days > 30 { 404 } else { 200 }, "job of {days} days ago");
    }
    assert_eq!(app.status(&admin, &stray.to_string()).await.status(), 404);
    let kept = app.status(&admin, &retrying.to_string()).await;
    assert_eq!(kept.status(), 200, "an unfinished job outlives its day's partition");
    assert_eq!(partition_of(&pool, retrying).await, "job_history_default");
    app.stop().await;
}

/// Every process makes the coming week's partitions at start-up; several starting at once
/// must all succeed, not race to create the same table.
#[tokio::test]
async fn processes_making_partitions_at_once_all_succeed() {
    let db = TestDb::create().await;
    let pool = db.pool().await;
    let today = Utc::now().date_naive();
    let (first, last) = (today - Days::new(60), today - Days::new(31));
    let makers = (0..4).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move { partitions::ensure(&pool, first, last).await })
    });
    let made: i32 = futures::future::join_all(makers)
        .await
        .into_iter()
        .map(|r| r.unwrap().expect("making partitions beside another process"))
        .sum();
    assert_eq!(made, 30, "each day made once, by one of them");
}

/// Progress reports are kept in one statement for many jobs: a message PostgreSQL's text
/// refuses (a NUL) or a job not on record does not fail the others, and a report older than
/// the one on record (a batch written late) changes nothing.
#[tokio::test]
async fn progress_reports_are_kept_together_and_a_late_one_changes_nothing() {
    let db = TestDb::create().await;
    let pool = db.pool().await;
    let now = Utc::now();
    let (a, b) = (id_at(now), id_at(now + Duration::from_millis(1)));
    insert(&pool, a, "running", now).await;
    insert(&pool, b, "running", now).await;
    history::record_progress(
        &pool,
        &[
            (a, 40, "copying\0 tables".into(), now),
            (b, 150, "done".into(), now),
            (Uuid::now_v7(), 10, "no such job".into(), now),
        ],
    )
    .await
    .unwrap();
    history::record_progress(&pool, &[(a, 10, "stale".into(), now - Duration::from_secs(1))])
        .await
        .unwrap();
    let rows: Vec<(Uuid, Option<i16>, Option<String>)> =
        sqlx::query_as("SELECT id, progress, progress_message FROM job_history ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (a, Some(40), Some("copying tables".to_string())),
            (b, Some(100), Some("done".to_string()))
        ]
    );
}

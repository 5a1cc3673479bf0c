//! The hourly clean-up: what has outlived its retention goes, everything else stays.
use std::time::Duration;

use chrono::Utc;
use nightshift_common::auth::Scope;
use nightshift_common::job_ids::first_uuid_v7_at;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn cleanup_deletes_expired_history_and_outbox_rows_and_keeps_the_rest() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    let now = Utc::now();
    let old = first_uuid_v7_at(now - chrono::Duration::days(40));
    let recent = first_uuid_v7_at(now - chrono::Duration::days(2));
    let stuck = first_uuid_v7_at(now - chrono::Duration::days(41));
    for (id, state) in [(old, "succeeded"), (recent, "succeeded"), (stuck, "scheduled")] {
        sqlx::query(
            "INSERT INTO job_history (id, queue, kind, state, created_at) VALUES ($1, 'default', 'noop', $2, now())",
        )
        .bind(id)
        .bind(state)
        .execute(&pool)
        .await
        .unwrap();
    }
    for (key, state, age_days) in [
        ("old-sent", "sent", 100),
        ("old-pending", "pending", 100),
        ("new-sent", "sent", 3),
    ] {
        sqlx::query(
            "INSERT INTO email_outbox (message_key, message_id, template, recipient, subject, text_body, html_body, state, created_at)
             VALUES ($1, $1, 'password_reset', 'a@example.com', 's', 't', 'h', $2, now() - make_interval(days => $3))",
        )
        .bind(key)
        .bind(state)
        .bind(age_days)
        .execute(&pool)
        .await
        .unwrap();
    }
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(&[Scope::JobsWrite, Scope::JobsRead, Scope::Admin]);
    let id = app
        .enqueue_id(&token, json!({"kind": "maintenance.cleanup", "payload": {}}))
        .await;
    let done = app.wait_state(&token, &id, "succeeded", Duration::from_secs(30)).await;
    assert_eq!(done["result"]["deleted"]["job_history"], 1, "{done}");
    let history: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM job_history WHERE id <> $1 ORDER BY id")
        .bind(uuid::Uuid::parse_str(&id).unwrap())
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        history,
        vec![stuck, recent],
        "an unfinished job's history stays, however old"
    );
    let outbox: Vec<String> = sqlx::query_scalar("SELECT message_key FROM email_outbox ORDER BY message_key")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        outbox,
        vec!["new-sent", "old-pending"],
        "a pending e-mail is never deleted"
    );
    app.stop().await;
}

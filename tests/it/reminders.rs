//! Reminders, e-mail and webhooks end to end, against a real SMTP server (aiosmtpd) and a real
//! HTTP receiver: one e-mail per (reminder, due date) whatever runs twice, retries through an
//! SMTP outage, 550s that end dead with the reply kept, and signed webhooks.
use std::time::Duration;

use chrono::{DateTime, Utc};
use nightshift_common::{auth::Scope, rate::RateLimit};
use nightshift_queue::connect_redis;
use nightshift_workers::jobs::{
    JobEnv, reminders,
    webhook::{self, TOLERANCE, VerifyError},
};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::*;

const ALL: &[Scope] = &Scope::ALL;

async fn user(pool: &PgPool, id: i64, email: &str, tz: &str) {
    sqlx::query("INSERT INTO users (id, email, name, time_zone, currency) VALUES ($1, $2, $3, $4, 'EUR')")
        .bind(id)
        .bind(email)
        .bind(format!("User {id}"))
        .bind(tz)
        .execute(pool)
        .await
        .unwrap();
}

async fn get(app: &App, token: &str, path: &str) -> (u16, Value) {
    let r = app
        .http
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until the queue has nothing queued, running or retrying.
/// Creates a webhook endpoint for user 1 at `url` and a reminder delivered to it at 10:00 for
/// each (title, due date); returns the endpoint as created (with its secret).
async fn webhook_reminders(app: &App, token: &str, url: &str, reminders: &[(&str, &str)]) -> Value {
    let (status, endpoint) = app.post(token, "/v1/users/1/webhooks", json!({"url": url})).await;
    assert_eq!(status, 201, "{endpoint}");
    for (title, due) in reminders {
        let body = json!({"title": title, "due_date": due, "notify_time": "10:00", "channel": "webhook",
                          "webhook_id": endpoint["id"]});
        assert_eq!(app.post(token, "/v1/users/1/reminders", body).await.0, 201);
    }
    endpoint
}

async fn drained(redis: &PrivateRedis, name: &str) -> nightshift_queue::Counts {
    let q = queue(redis, name).await;
    wait_for(&format!("queue {name} to drain"), Duration::from_secs(60), || async {
        let c = q.counts().await.ok()?;
        (c.queued == 0 && c.running == 0 && c.retrying == 0 && c.scheduled == 0).then_some(c)
    })
    .await
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test]
async fn a_due_reminder_sends_exactly_one_email_with_subject_recipient_text_and_html() {
    let (redis, db, sink) = (PrivateRedis::start(), TestDb::create().await, SmtpSink::start());
    let pool = db.pool().await;
    user(&pool, 1, "ada@example.com", "Europe/Paris").await;
    let mut config = config(&redis, &db);
    config.mail.smtp_url = sink.url();
    let app = App::start(&config, true).await;
    let token = token(ALL);
    let (status, created) = app
        .post(
            &token,
            "/v1/users/1/reminders",
            json!({"title": "Rent", "amount": -120000, "due_date": "2026-12-10", "lead_days": 3,
               "notify_time": "09:00", "channel": "email"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    // 09:00 in Paris three days before is 08:00 UTC on the 7th: a scan a minute before finds
    // nothing, one a minute after finds it.
    for as_of in ["2026-12-07T07:59:00Z", "2026-12-07T08:01:00Z"] {
        app.enqueue_id(&token, json!({"kind": "reminder.scan", "payload": {"as_of": as_of}}))
            .await;
        drained(&redis, "reminders").await;
    }
    drained(&redis, "email").await;
    let mails = sink.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    assert_eq!(m["subject"], "Reminder: Rent is due on 2026-12-10");
    assert_eq!(m["rcpt_tos"], json!(["ada@example.com"]));
    assert_eq!(m["from"], "Nightshift Tests <tests@nightshift.test>");
    assert!(
        m["text"]
            .as_str()
            .unwrap()
            .contains("Rent is due on 2026-12-10 (1200.00 EUR)")
    );
    assert!(m["html"].as_str().unwrap().contains("<strong>Rent</strong>"));
    assert!(m["html"].as_str().unwrap().contains("Hello User 1,"));
    let (state, message_id): (String, String) =
        sqlx::query_as("SELECT state, message_id FROM email_outbox WHERE message_key = $1")
            .bind(format!("reminder:{}:2026-12-10", created["id"]))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (state.as_str(), m["message_id"].as_str().unwrap()),
        ("sent", message_id.as_str())
    );
    app.stop().await;
}

#[tokio::test]
async fn scans_run_concurrently_twice_and_replayed_after_a_crash_notify_each_due_date_once() {
    let (mut redis, db, sink) = (PrivateRedis::start(), TestDb::create().await, SmtpSink::start());
    let pool = db.pool().await;
    let mut config = config(&redis, &db);
    config.mail.smtp_url = sink.url();
    // 30 users in three zones, each with a monthly bill on the 5th and a one-off on the 6th,
    // all told at 08:00 local: 60 notifications due on 2026-12-05 and -06.
    for id in 1..=30 {
        let tz = ["Europe/Paris", "America/New_York", "Asia/Tokyo"][id as usize % 3];
        user(&pool, id, &format!("u{id}@example.com"), tz).await;
        sqlx::query(
            "INSERT INTO reminders (user_id, title, due_date, cadence, notify_time, channel) VALUES
                ($1, 'Phone', '2026-01-05', 'monthly', '08:00', 'email'),
                ($1, 'Insurance', '2026-12-06', NULL, '08:00', 'email')",
        )
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    }
    let until = at("2026-12-07T00:00:00Z");
    let lookback = chrono::Duration::hours(72);
    let env = JobEnv::new(&config, pool.clone(), connect_redis(&config.redis_url).await.unwrap()).unwrap();
    // A scan that dies after fencing and before pushing: Redis goes away under it.
    redis.kill();
    assert!(reminders::scan(&env, until, lookback).await.is_err());
    let fenced: i64 = sqlx::query_scalar("SELECT count(*) FROM reminder_deliveries WHERE state = 'queued'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(fenced, 60, "the failed scan fenced its notifications before pushing");
    redis.restart();

    let app = App::start(&config, true).await;
    let token = token(ALL);
    // Two scans at once, in this process, and two more through the queue.
    let (a, b) = tokio::join!(
        reminders::scan(&env, until, lookback),
        reminders::scan(&env, until, lookback)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.0 + b.0, 0, "nothing new to fence: the crashed scan did it");
    for _ in 0..2 {
        app.enqueue_id(
            &token,
            json!({"kind": "reminder.scan", "payload": {"as_of": until, "lookback_hours": 72}}),
        )
        .await;
    }
    drained(&redis, "reminders").await;
    drained(&redis, "email").await;
    // A replay once everything went out changes nothing.
    reminders::scan(&env, until, lookback).await.unwrap();
    drained(&redis, "reminders").await;
    drained(&redis, "email").await;

    let mails = sink.messages();
    assert_eq!(mails.len(), 60, "one e-mail per (reminder, due date)");
    let mut keys: Vec<(String, String)> = mails
        .iter()
        .map(|m| {
            (
                m["rcpt_tos"][0].as_str().unwrap().to_string(),
                m["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 60, "no (recipient, subject) twice");
    let handed: i64 = sqlx::query_scalar("SELECT count(*) FROM reminder_deliveries WHERE state = 'handed_off'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(handed, 60);
    app.stop().await;
}

#[tokio::test]
async fn an_smtp_outage_delays_an_email_which_then_goes_once_and_a_550_ends_dead_with_the_reply() {
    let (redis, db, mut sink) = (PrivateRedis::start(), TestDb::create().await, SmtpSink::start());
    let mut config = config(&redis, &db);
    config.mail.smtp_url = sink.url();
    let app = App::start(&config, true).await;
    let token = token(ALL);
    let reset = |to: &str, key: &str| {
        json!({"template": "password_reset", "to": to, "idempotency_key": key,
               "vars": {"name": "Ada", "reset_url": "https://app.example.com/reset?t=abc", "expires_minutes": 30}})
    };
    sink.kill();
    let (status, queued) = app
        .post(&token, "/v1/emails", reset("ada@example.com", "reset-1"))
        .await;
    assert_eq!(status, 202, "{queued}");
    let failing = wait_for("two failed attempts", Duration::from_secs(30), || async {
        let (_, v) = get(&app, &token, "/v1/emails/reset-1").await;
        (v["attempts"].as_i64()? >= 2).then_some(v)
    })
    .await;
    assert_eq!(failing["state"], "pending");
    assert!(failing["last_error"].as_str().unwrap().contains("SMTP"), "{failing}");
    sink.restart();
    let sent = wait_for("the e-mail to be sent", Duration::from_secs(60), || async {
        let (_, v) = get(&app, &token, "/v1/emails/reset-1").await;
        (v["state"] == "sent").then_some(v)
    })
    .await;
    assert!(sent["smtp_reply"].as_str().unwrap().starts_with("250"), "{sent}");
    // The same key again is the same message, not a second one.
    let (status, again) = app
        .post(&token, "/v1/emails", reset("ada@example.com", "reset-1"))
        .await;
    assert_eq!((status, &again["message_id"]), (200, &queued["message_id"]));
    drained(&redis, "email").await;
    let mails = sink.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["message_id"], queued["message_id"]);
    assert!(
        mails[0]["text"]
            .as_str()
            .unwrap()
            .contains("https://app.example.com/reset?t=abc")
    );

    let (_, refused) = app
        .post(&token, "/v1/emails", reset("reject@example.com", "reset-2"))
        .await;
    let job = app
        .wait_state(
            &token,
            refused["job_id"].as_str().unwrap(),
            "dead",
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(job["attempts"], 1, "a permanent refusal is not retried");
    let (_, failed) = get(&app, &token, "/v1/emails/reset-2").await;
    assert_eq!(failed["state"], "failed");
    assert!(failed["last_error"].as_str().unwrap().contains("550"), "{failed}");
    assert_eq!(sink.messages().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn email_requests_are_checked_field_by_field_and_need_their_scope() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let token = token(ALL);
    let vars = json!({"name": "Ada", "reset_url": "https://x", "expires_minutes": 5});
    for (body, field) in [
        (
            json!({"template": "nope", "to": "a@example.com", "vars": vars}),
            "template",
        ),
        (
            json!({"template": "password_reset", "to": "not an address", "vars": vars}),
            "to",
        ),
        (
            json!({"template": "password_reset", "to": "a@example.com", "vars": {"name": "Ada", "reset_url": "x"}}),
            "vars.expires_minutes",
        ),
        (
            json!({"template": "password_reset", "to": "a@example.com", "vars": [1]}),
            "vars",
        ),
        (json!({"to": "a@example.com"}), "body"),
    ] {
        let (status, err) = app.post(&token, "/v1/emails", body.clone()).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{body} → {err}"
        );
    }
    let (status, _) = app
        .post(
            &crate::support::token(&[Scope::JobsWrite]),
            "/v1/emails",
            json!({"template": "password_reset", "to": "a@example.com", "vars": vars}),
        )
        .await;
    assert_eq!(status, 403);
    // A key reused for another recipient is a conflict, not a silent resend to the first one.
    let first = json!({"template": "password_reset", "to": "a@example.com", "vars": vars, "idempotency_key": "k"});
    assert_eq!(app.post(&token, "/v1/emails", first).await.0, 202);
    let other = json!({"template": "password_reset", "to": "b@example.com", "vars": vars, "idempotency_key": "k"});
    assert_eq!(app.post(&token, "/v1/emails", other).await.0, 409);
    app.stop().await;
}

#[tokio::test]
async fn reminders_are_created_listed_replaced_and_deleted_per_user_with_field_errors() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    user(&pool, 1, "a@example.com", "UTC").await;
    user(&pool, 2, "b@example.com", "UTC").await;
    let app = App::start(&config(&redis, &db), false).await;
    let (rw, read_only) = (token(ALL), token(&[Scope::RemindersRead]));
    let bill =
        json!({"title": "Gym", "amount": -2999, "due_date": "2026-12-01", "cadence": "monthly", "channel": "email"});
    let (status, created) = app.post(&rw, "/v1/users/1/reminders", bill.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (created["notify_time"].as_str(), created["lead_days"].as_i64()),
        (Some("09:00"), Some(0))
    );
    let id = created["id"].as_i64().unwrap();
    assert_eq!(app.post(&read_only, "/v1/users/1/reminders", bill.clone()).await.0, 403);
    let (_, listed) = get(&app, &read_only, "/v1/users/1/reminders").await;
    assert_eq!(listed["reminders"].as_array().unwrap().len(), 1);
    // Another user's path does not reach it.
    assert_eq!(get(&app, &rw, &format!("/v1/users/2/reminders/{id}")).await.0, 404);

    let url = format!("{}/v1/users/1/reminders/{id}", app.base);
    let mut changed = bill.clone();
    changed["lead_days"] = json!(2);
    changed["notify_time"] = json!("07:30");
    let r = app.http.put(&url).bearer_auth(&rw).json(&changed).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["notify_time"].as_str(), v["lead_days"].as_i64()),
        (Some("07:30"), Some(2))
    );

    for (patch, field) in [
        (json!({"title": ""}), "title"),
        (json!({"cadence": "daily"}), "cadence"),
        (json!({"cadence": "every_n_weeks"}), "interval_weeks"),
        (json!({"notify_time": "9am"}), "notify_time"),
        (json!({"lead_days": 90}), "lead_days"),
        (json!({"end_date": "2026-01-01"}), "end_date"),
        (json!({"channel": "webhook"}), "webhook_id"),
        (json!({"due_date": "2026-02-30"}), "due_date"),
        // Dates the calendar holds but the reminder scan's date arithmetic should never meet.
        (json!({"due_date": "+262142-12-31"}), "due_date"),
        (json!({"end_date": "9999-12-31"}), "end_date"),
        (json!({"channel": "sms"}), "channel"),
        // Out of range even where the cadence does not use them: the table refuses them too.
        (json!({"interval_weeks": 100}), "interval_weeks"),
        (json!({"days_of_month": [15, 1]}), "days_of_month"),
    ] {
        let mut body = bill.clone();
        body.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        let (status, err) = app.post(&rw, "/v1/users/1/reminders", body).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{patch} → {err}"
        );
    }
    assert_eq!(app.post(&rw, "/v1/users/99/reminders", bill).await.0, 404);
    let (status, hook) = app
        .post(&rw, "/v1/users/1/webhooks", json!({"url": "HTTPS://Hooks.Example.com"}))
        .await;
    assert_eq!(
        (status, hook["url"].as_str()),
        (201, Some("https://hooks.example.com/"))
    );
    let (status, err) = app.post(&rw, "/v1/users/1/webhooks", json!({"url": "ftp://x"})).await;
    assert_eq!((status, err["error"]["field"].as_str()), (422, Some("url")));
    let r = app.http.delete(&url).bearer_auth(&rw).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(get(&app, &rw, &format!("/v1/users/1/reminders/{id}")).await.0, 404);
    app.stop().await;
}

#[tokio::test]
async fn webhooks_are_signed_with_the_endpoint_secret_a_500_is_retried_and_a_400_is_not() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    user(&pool, 1, "a@example.com", "Europe/Paris").await;
    let receiver = WebhookReceiver::start(&[500, 500, 200]).await;
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(ALL);
    let endpoint = webhook_reminders(
        &app,
        &token,
        &receiver.url,
        &[("Water", "2026-12-10"), ("Power", "2026-12-11")],
    )
    .await;
    let secret = endpoint["secret"].as_str().unwrap().to_string();
    // The first reminder: two 500s, then delivered on the third attempt.
    app.enqueue_id(
        &token,
        json!({"kind": "reminder.scan", "payload": {"as_of": "2026-12-10T09:30:00Z"}}),
    )
    .await;
    drained(&redis, "reminders").await;
    drained(&redis, "webhooks").await;
    let got = receiver.received();
    assert_eq!(got.len(), 3, "two 500s retried, then 200");
    let id = got[0].0[webhook::ID_HEADER].to_str().unwrap().to_string();
    for (headers, body) in &got {
        assert_eq!(
            headers[webhook::ID_HEADER].to_str().unwrap(),
            id,
            "one delivery id across attempts"
        );
        let sig = headers[webhook::SIGNATURE_HEADER].to_str().unwrap();
        let now = Utc::now().timestamp();
        assert_eq!(webhook::verify(&secret, sig, body.as_bytes(), now, TOLERANCE), Ok(()));
        assert_eq!(
            webhook::verify("whsec_another", sig, body.as_bytes(), now, TOLERANCE),
            Err(VerifyError::Mismatch)
        );
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            (v["event"].as_str(), v["data"]["title"].as_str()),
            (Some("reminder.due"), Some("Water"))
        );
    }

    // After a rotation, deliveries carry both signatures; then a 400 ends the second one dead.
    let (_, rotated) = app
        .post(
            &token,
            &format!("/v1/users/1/webhooks/{}/rotate", endpoint["id"]),
            json!({}),
        )
        .await;
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    *receiver.statuses.lock().unwrap() = vec![400];
    app.enqueue_id(
        &token,
        json!({"kind": "reminder.scan", "payload": {"as_of": "2026-12-11T09:30:00Z"}}),
    )
    .await;
    drained(&redis, "reminders").await;
    let c = drained(&redis, "webhooks").await;
    assert_eq!(c.dead, 1, "a 400 is not retried");
    let got = receiver.received();
    assert_eq!(got.len(), 4, "one request for the refused delivery");
    let (headers, body) = &got[3];
    let sig = headers[webhook::SIGNATURE_HEADER].to_str().unwrap();
    let now = Utc::now().timestamp();
    for s in [&new_secret, &secret] {
        assert_eq!(webhook::verify(s, sig, body.as_bytes(), now, TOLERANCE), Ok(()));
    }
    let (state, status): (String, Option<i32>) =
        sqlx::query_as("SELECT state, last_status FROM webhook_outbox ORDER BY created_at DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), status), ("failed", Some(400)));
    app.stop().await;
}

#[tokio::test]
async fn a_rate_limit_is_shared_by_every_process_and_kept_per_subject() {
    let redis = PrivateRedis::start();
    let rate = RateLimit::per_minute("nstest", "email", 60, 2);
    let (mut w1, mut w2) = (
        connect_redis(&redis.url()).await.unwrap(),
        connect_redis(&redis.url()).await.unwrap(),
    );
    // A burst of two to one domain, taken by two workers, exhausts it for both...
    assert_eq!(rate.take(&mut w1, "example.com").await.unwrap(), None);
    assert_eq!(rate.take(&mut w2, "example.com").await.unwrap(), None);
    let wait = rate.take(&mut w1, "example.com").await.unwrap();
    assert!(
        wait.is_some_and(|w| w > Duration::ZERO && w <= Duration::from_secs(1)),
        "{wait:?}"
    );
    assert!(rate.take(&mut w2, "example.com").await.unwrap().is_some());
    // ...and leaves other domains alone.
    assert_eq!(rate.take(&mut w2, "example.org").await.unwrap(), None);
}

#[tokio::test]
async fn a_shortfall_sends_one_low_balance_email_however_often_it_is_projected() {
    let (redis, db, sink) = (PrivateRedis::start(), TestDb::create().await, SmtpSink::start());
    let pool = db.pool().await;
    user(&pool, 7, "grace@example.com", "Europe/Paris").await;
    for sql in [
        "UPDATE users SET low_balance_threshold = 10000 WHERE id = 7",
        "INSERT INTO accounts (user_id, name, balance) VALUES (7, 'current', 50000)",
        "INSERT INTO scheduled_transactions (user_id, name, amount, date) VALUES (7, 'tax', -45000, '2026-12-15')",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let mut config = config(&redis, &db);
    config.mail.smtp_url = sink.url();
    let app = App::start(&config, true).await;
    let token = token(ALL);
    // Projected from two as-of dates: both see the shortfall of the 15th.
    for as_of in ["2026-12-01", "2026-12-02", "2026-12-02"] {
        let (status, _) = app
            .post(&token, "/v1/users/7/cashflow/refresh", json!({"as_of": as_of}))
            .await;
        assert_eq!(status, 202);
        drained(&redis, "cashflow").await;
    }
    drained(&redis, "email").await;
    let mails = sink.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["subject"], "Low balance ahead on 2026-12-15");
    assert_eq!(mails[0]["rcpt_tos"], json!(["grace@example.com"]));
    let text = mails[0]["text"].as_str().unwrap();
    assert!(
        text.contains("fall to 50.00 EUR on 2026-12-15") && text.contains("threshold of 100.00 EUR"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_webhook_to_a_private_address_is_refused_and_nothing_is_sent() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    user(&pool, 1, "a@example.com", "Europe/Paris").await;
    let receiver = WebhookReceiver::start(&[200]).await;
    let mut config = config(&redis, &db);
    config.webhook_allow_private = false;
    let app = App::start(&config, true).await;
    let token = token(ALL);
    // The receiver listens on 127.0.0.1: by name ("localhost") and by address.
    for url in [receiver.url.clone(), receiver.url.replace("127.0.0.1", "localhost")] {
        webhook_reminders(&app, &token, &url, &[("Rent", "2026-12-10")]).await;
    }
    app.enqueue_id(
        &token,
        json!({"kind": "reminder.scan", "payload": {"as_of": "2026-12-10T09:30:00Z"}}),
    )
    .await;
    drained(&redis, "reminders").await;
    drained(&redis, "webhooks").await;
    assert!(receiver.received().is_empty(), "no request may reach a private address");
    let outcomes: Vec<(String, String)> =
        sqlx::query_as("SELECT state, last_error FROM webhook_outbox ORDER BY delivery_key")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(outcomes.len(), 2);
    for (state, error) in outcomes {
        assert_eq!(state, "failed", "refused at once, not retried: {error}");
        assert!(error.starts_with("refused: "), "{error}");
    }
    app.stop().await;
}

/// E-mails queued many at once, one of them under a key an earlier message to another
/// recipient holds: that one keeps its first recipient and is not sent again; the rest go.
#[tokio::test]
async fn emails_queued_together_send_the_rest_when_one_key_was_used_for_another_recipient() {
    use nightshift_catalog::{
        Queues,
        email::{self, NewEmail},
    };
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let pool = db.pool().await;
    let queues = Queues::new(connect_redis(&config.redis_url).await.unwrap(), &config.queue);
    let vars = json!({"name": "A", "date": "2026-12-24", "projected_balance": "€1.00", "threshold": "€200.00"});
    let mail = |key, to| NewEmail {
        key,
        template: "low_balance",
        to,
        vars: &vars,
    };
    let first = email::enqueue_many(&pool, &queues, &[mail("k-b", "b@example.com")], "test").await;
    assert_eq!(first.unwrap(), 1);
    let batch = [
        mail("k-a", "a@example.com"),
        mail("k-b", "someone-else@example.com"),
        mail("k-c", "c@example.com"),
    ];
    let pushed = email::enqueue_many(&pool, &queues, &batch, "test").await.unwrap();
    assert_eq!(pushed, 2, "k-a and k-c are pushed, k-b is not pushed again");
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT message_key, recipient FROM email_outbox ORDER BY message_key")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("k-a".to_string(), "a@example.com".to_string()),
            ("k-b".to_string(), "b@example.com".to_string()),
            ("k-c".to_string(), "c@example.com".to_string()),
        ]
    );
    let q = queues.get("email").unwrap();
    let c = q.counts().await.unwrap();
    assert_eq!(c.queued + c.scheduled, 3, "one send job per message: {c:?}");
}

/// A receiver is anyone's URL: a 500 with a gigabyte of body costs the worker a bounded read
/// (it used to read the whole body, then keep 200 characters), and the delivery retries as any
/// 500 does.
#[tokio::test]
async fn a_receiver_streaming_a_gigabyte_error_body_is_read_only_a_prefix_and_retried() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    user(&pool, 1, "a@example.com", "Europe/Paris").await;
    let receiver = StreamingReceiver::start(500, b"<html>busy", 1 << 30, b'x').await;
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(ALL);
    webhook_reminders(&app, &token, &receiver.url, &[("Water", "2026-12-10")]).await;
    app.enqueue_id(
        &token,
        json!({"kind": "reminder.scan", "payload": {"as_of": "2026-12-10T09:30:00Z"}}),
    )
    .await;
    use std::sync::atomic::Ordering::SeqCst;
    wait_for("a retried delivery", Duration::from_secs(60), || async {
        (receiver.requests.load(SeqCst) >= 2).then_some(())
    })
    .await;
    let (state, error): (String, String) = sqlx::query_as("SELECT state, last_error FROM webhook_outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(state, "pending", "a 500 is retried");
    assert!(
        error.starts_with("receiver answered 500 Internal Server Error: <html>busyxxx"),
        "{error}"
    );
    assert!(error.chars().count() < 300, "the error keeps a bounded prefix");
    // Two requests' worth of streaming, with whatever the sockets buffered: far below 2 GiB.
    let streamed = receiver.streamed.load(SeqCst);
    assert!(streamed < 64 << 20, "{streamed} bytes were streamed to the worker");
    app.stop().await;
}

/// A 4xx ends a delivery after one request whatever its body holds: a NUL in a 410's body
/// failed the write of the outcome, and the 410 was retried.
#[tokio::test]
async fn a_410_whose_body_holds_a_nul_fails_the_delivery_after_one_request() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    user(&pool, 1, "a@example.com", "Europe/Paris").await;
    let body: &[u8] = b"gone\0for good";
    let receiver = StreamingReceiver::start(410, body, body.len() as u64, 0).await;
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(ALL);
    webhook_reminders(&app, &token, &receiver.url, &[("Water", "2026-12-10")]).await;
    app.enqueue_id(
        &token,
        json!({"kind": "reminder.scan", "payload": {"as_of": "2026-12-10T09:30:00Z"}}),
    )
    .await;
    drained(&redis, "reminders").await;
    let c = drained(&redis, "webhooks").await;
    assert_eq!(c.dead, 1);
    let (state, status, error): (String, Option<i32>, String) =
        sqlx::query_as("SELECT state, last_status, last_error FROM webhook_outbox")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), status), ("failed", Some(410)));
    assert!(error.ends_with("gone\u{FFFD}for good"), "{error}");
    use std::sync::atomic::Ordering::SeqCst;
    assert_eq!(receiver.requests.load(SeqCst), 1, "one request, no retry");
    app.stop().await;
}

/// lettre's own timeout bounds connecting only: a server that takes the message after `DATA`
/// and never answers is cut by the configured SMTP timeout (the job's is 60 s), and the message
/// is retried.
#[tokio::test]
async fn an_smtp_server_stalling_after_data_is_cut_by_the_smtp_timeout() {
    let (redis, db, sink) = (PrivateRedis::start(), TestDb::create().await, SmtpSink::start());
    let mut config = config(&redis, &db);
    config.mail.smtp_url = sink.url();
    config.mail.smtp_timeout = Duration::from_secs(2);
    let app = App::start(&config, true).await;
    let token = token(ALL);
    let body = json!({"template": "password_reset", "to": "stall@example.com", "idempotency_key": "stall-1",
                      "vars": {"name": "Ada", "reset_url": "https://app.example.com/reset?t=abc", "expires_minutes": 30}});
    assert_eq!(app.post(&token, "/v1/emails", body).await.0, 202);
    let failing = wait_for(
        "an attempt cut by the SMTP timeout",
        Duration::from_secs(30),
        || async {
            let (_, v) = get(&app, &token, "/v1/emails/stall-1").await;
            v["last_error"].as_str().is_some().then_some(v)
        },
    )
    .await;
    assert_eq!(failing["state"], "pending", "{failing}");
    assert_eq!(failing["last_error"], "SMTP: no answer within 2s", "{failing}");
    app.stop().await;
}

/// A token confined to a user is that user's app: it writes to the user's own address on file
/// (the default), never to another address (404) and never with an operator template.
#[tokio::test]
async fn a_confined_token_sends_e_mail_only_to_its_users_address_on_file() {
    let (redis, db, sink) = (PrivateRedis::start(), TestDb::create().await, SmtpSink::start());
    let pool = db.pool().await;
    user(&pool, 1001, "ada@example.com", "Europe/Paris").await;
    user(&pool, 1002, "bob@example.com", "Europe/Paris").await;
    let mut config = config(&redis, &db);
    config.mail.smtp_url = sink.url();
    let app = App::start(&config, true).await;
    let ada = keys()
        .issue_for("app", Some(1001), &[Scope::EmailsSend], Duration::from_secs(600))
        .unwrap();
    let reset = |to: Option<&str>, key: &str| {
        let mut b = json!({"template": "password_reset", "idempotency_key": key,
               "vars": {"name": "Ada", "reset_url": "https://app.example.com/reset?t=abc", "expires_minutes": 30}});
        if let Some(to) = to {
            b["to"] = json!(to);
        }
        b
    };
    for to in ["bob@example.com", "attacker@evil.example"] {
        let (status, body) = app.post(&ada, "/v1/emails", reset(Some(to), "k-other")).await;
        assert_eq!(status, 404, "{to}: {body}");
    }
    let backup =
        json!({"template": "backup_failed", "vars": {"what": "x", "backup_id": "1", "database": "d", "error": "e"}});
    let (status, body) = app.post(&ada, "/v1/emails", backup).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (403, Some("template")),
        "{body}"
    );
    assert_eq!(app.post(&ada, "/v1/emails", reset(None, "k-default")).await.0, 202);
    assert_eq!(
        app.post(&ada, "/v1/emails", reset(Some("ADA@example.com"), "k-own"))
            .await
            .0,
        202
    );
    // A service token must still name its recipient.
    let (status, body) = app.post(&token(ALL), "/v1/emails", reset(None, "k-svc")).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("to")), "{body}");
    drained(&redis, "email").await;
    let rcpts: Vec<Value> = sink.messages().iter().map(|m| m["rcpt_tos"].clone()).collect();
    assert_eq!(rcpts, vec![json!(["ada@example.com"]); 2], "only Ada's address, twice");
    let outbox: Vec<String> = sqlx::query_scalar("SELECT recipient FROM email_outbox")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(outbox, vec!["ada@example.com".to_string(); 2]);
    app.stop().await;
}

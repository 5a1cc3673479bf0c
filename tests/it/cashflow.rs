//! Cashflow projections end to end: hand-computed balances through the API, idempotent
//! re-runs, and the nightly fan-out by local time zone.
use std::time::Duration;

use chrono::{DateTime, Utc};
use nightshift_common::auth::Scope;
use nightshift_queue::connect_redis;
use nightshift_workers::jobs::{
    JobEnv,
    cashflow::nightly::{Paging, fan_out},
};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::*;

const RW: &[Scope] = &[Scope::JobsRead, Scope::JobsWrite];

async fn seed_user(pool: &PgPool, id: i64, tz: &str) {
    sqlx::query("INSERT INTO users (id, email, time_zone, low_balance_threshold) VALUES ($1, $2, $3, 20000)")
        .bind(id)
        .bind(format!("user{id}@example.com"))
        .bind(tz)
        .execute(pool)
        .await
        .unwrap();
}

async fn exec(pool: &PgPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

#[tokio::test]
async fn a_projection_across_a_short_february_with_weekend_shifts_matches_the_hand_computed_balances() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    seed_user(&pool, 1, "Europe/Paris").await;
    exec(
        &pool,
        "INSERT INTO accounts (user_id, name, balance) VALUES (1, 'current', 60000), (1, 'savings', 40000)",
    )
    .await;
    // Rent on the 1st moves to Monday; salary on the 15th moves to Friday; a subscription on the 31st.
    exec(
        &pool,
        "INSERT INTO recurring_items (user_id, name, amount, cadence, anchor_date, business_day) VALUES
            (1, 'rent', -90000, 'monthly', '2025-01-01', 'next'),
            (1, 'salary', 120000, 'monthly', '2025-01-15', 'previous'),
            (1, 'streaming', -1299, 'monthly', '2025-01-31', 'none')",
    )
    .await;
    exec(
        &pool,
        "INSERT INTO scheduled_transactions (user_id, name, amount, date) VALUES (1, 'repair', -5000, '2025-02-20')",
    )
    .await;
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(RW);
    let resp = app
        .http
        .post(format!("{}/v1/users/1/cashflow/refresh", app.base))
        .bearer_auth(&token)
        .json(&json!({"as_of": "2025-02-01", "horizon_days": 45}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let job = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    app.wait_state(&token, &job, "succeeded", Duration::from_secs(10)).await;

    let p: Value = app
        .http
        .get(format!("{}/v1/users/1/cashflow?as_of=2025-02-01", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let closing = |date: &str| -> i64 {
        p["days"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["date"] == date)
            .unwrap()["closing"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(p["opening"], 100_000);
    assert_eq!(p["days"].as_array().unwrap().len(), 45);
    assert_eq!(closing("2025-02-01"), 100_000); // Saturday: rent waits for Monday
    assert_eq!(closing("2025-02-03"), 10_000); // rent
    assert_eq!(closing("2025-02-14"), 130_000); // salary of Saturday the 15th, paid Friday
    assert_eq!(closing("2025-02-15"), 130_000);
    assert_eq!(closing("2025-02-20"), 125_000); // one-off
    assert_eq!(closing("2025-02-28"), 123_701); // the 31st in February
    assert_eq!(closing("2025-03-01"), 123_701); // Saturday again
    assert_eq!(closing("2025-03-03"), 33_701); // rent
    assert_eq!(closing("2025-03-14"), 153_701); // salary of Saturday the 15th
    assert_eq!(closing("2025-03-17"), 153_701);
    assert_eq!(
        (p["lowest_balance"].as_i64(), p["lowest_date"].as_str()),
        (Some(10_000), Some("2025-02-03"))
    );
    assert_eq!(p["shortfall"]["date"], "2025-02-03");
    let alerts: i64 = sqlx::query_scalar("SELECT count(*) FROM shortfall_alerts WHERE user_id = 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(alerts, 1);
    app.stop().await;
}

#[tokio::test]
async fn re_runs_sequential_and_concurrent_leave_one_identical_row_and_one_alert() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    seed_user(&pool, 5, "America/New_York").await;
    exec(
        &pool,
        "INSERT INTO accounts (user_id, name, balance) VALUES (5, 'main', 30000)",
    )
    .await;
    exec(&pool, "INSERT INTO recurring_items (user_id, name, amount, cadence, anchor_date) VALUES (5, 'car', -25000, 'monthly', '2025-01-10')").await;
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(RW);
    let body = json!({"kind": "cashflow.project", "payload": {"user_id": 5, "as_of": "2025-03-01"}});
    let mut ids = vec![];
    for _ in 0..4 {
        ids.push(app.enqueue_id(&token, body.clone()).await);
    }
    for id in &ids {
        app.wait_state(&token, id, "succeeded", Duration::from_secs(10)).await;
    }
    type Row = (i64, Vec<i64>, chrono::DateTime<Utc>);
    let read = || async {
        sqlx::query_as::<_, Row>(
            "SELECT count(*) OVER (), closing, computed_at FROM cashflow_projections WHERE user_id = 5",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = read().await;
    assert_eq!(before.0, 1);
    let again = app.enqueue_id(&token, body).await;
    app.wait_state(&token, &again, "succeeded", Duration::from_secs(10))
        .await;
    let after = read().await;
    assert_eq!(
        before, after,
        "an identical re-run rewrites nothing, not even computed_at"
    );
    let alerts: i64 = sqlx::query_scalar("SELECT count(*) FROM shortfall_alerts WHERE user_id = 5")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(alerts, 1);
    app.stop().await;
}

/// Only the user's current projection sends a low-balance e-mail: a what-if for a later date,
/// or for a day older than the current one, finds the same shortfall and stays quiet.
#[tokio::test]
async fn a_what_if_projection_sends_no_low_balance_email_and_the_current_one_does() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    seed_user(&pool, 7, "UTC").await;
    // Below the 20,000 threshold from the first day of any projection.
    exec(
        &pool,
        "INSERT INTO accounts (user_id, name, balance) VALUES (7, 'main', 10000)",
    )
    .await;
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(RW);
    let today = Utc::now().date_naive();
    let refresh = |body: Value| {
        let (app, token) = (&app, &token);
        async move {
            let (status, queued) = app.post(token, "/v1/users/7/cashflow/refresh", body).await;
            assert_eq!(status, 202, "{queued}");
            let job = queued["id"].as_str().unwrap();
            let done = app.wait_state(token, job, "succeeded", Duration::from_secs(10)).await;
            assert!(done["result"]["first_shortfall"].is_string(), "a shortfall: {done}");
        }
    };
    let alerted = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT message_key FROM email_outbox WHERE message_key LIKE 'low_balance:7:%' ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let later = today + chrono::Days::new(30);
    refresh(json!({"as_of": later.to_string()})).await;
    assert_eq!(alerted().await, Vec::<String>::new(), "a what-if for {later} alerted");
    refresh(json!({})).await;
    assert_eq!(
        alerted().await,
        [format!("low_balance:7:{today}")],
        "the current one alerts"
    );
    let earlier = today - chrono::Days::new(10);
    refresh(json!({"as_of": earlier.to_string()})).await;
    assert_eq!(
        alerted().await,
        [format!("low_balance:7:{today}")],
        "a what-if for {earlier} alerted"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_nightly_fan_out_projects_each_due_user_once_even_when_restarted_half_way() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    // 12:30 UTC: 14:30 in Paris, 02:30 the next day in Kiritimati, 01:30 in Pago Pago (not yet due).
    let at: DateTime<Utc> = "2025-06-01T12:30:00Z".parse().unwrap();
    // Every tenth user's threshold is above their balance: a shortfall from day one.
    exec(
        &pool,
        "INSERT INTO users (id, email, time_zone, low_balance_threshold)
         SELECT g, 'u' || g || '@example.com',
                (ARRAY['Europe/Paris', 'Pacific/Kiritimati', 'Pacific/Pago_Pago', 'Not/AZone'])[1 + g % 4],
                CASE WHEN g % 10 = 0 THEN 1000000000 ELSE 0 END
         FROM generate_series(1, 2000) g",
    )
    .await;
    exec(
        &pool,
        "INSERT INTO accounts (user_id, name, balance) SELECT id, 'main', 1000 * id FROM users",
    )
    .await;
    let config = config(&redis, &db);
    let env = JobEnv::new(&config, pool.clone(), connect_redis(&config.redis_url).await.unwrap()).unwrap();
    // The first run dies after two pages...
    let paging = |max_pages| Paging {
        page_size: 250,
        max_pages,
        page_attempts: None,
    };
    assert_eq!(
        fan_out(&env, uuid::Uuid::now_v7(), at, paging(Some(2)), None)
            .await
            .unwrap(),
        500
    );
    // ...and the queue runs it again with workers going, in pages of another size: the users
    // of those first pages not yet projected sit in two jobs.
    let app = App::start(&config, true).await;
    // cashflow.nightly is an operator kind.
    let token = token(&[Scope::JobsRead, Scope::JobsWrite, Scope::Admin]);
    let nightly = app
        .enqueue_id(&token, json!({"kind": "cashflow.nightly", "payload": {"at": at}}))
        .await;
    let done = app
        .wait_state(&token, &nightly, "succeeded", Duration::from_secs(30))
        .await;
    let due = 1500; // every user but Pago Pago's
    // It reported how far it was; its last report stays readable after the run. The first run
    // pushed 500 of the due users: this one pushed the other 1,000, and the first 500 again
    // where not yet projected, under the same keys.
    assert_eq!(done["progress"]["percent"], 100, "{done}");
    assert!(
        done["progress"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("pushed ")),
        "{done}"
    );
    let q = queue(&redis, "cashflow").await;
    let stored = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM cashflow_projections")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    // On a timeout, say where the jobs are: a slow run tells from a lost job by the counts.
    let finished = poll_until(Duration::from_secs(60), || async {
        let c = q.counts().await.ok()?;
        (stored().await >= due && c.queued + c.running == 0).then_some(())
    })
    .await;
    assert!(
        finished.is_some(),
        "not every due user projected: {:?}",
        q.counts().await
    );
    let c = q.counts().await.unwrap();
    assert_eq!(c.dead, 0);
    // Each user stored by exactly one job, whichever of their jobs ran first.
    let stored_by_jobs = poll_until(Duration::from_secs(30), || async {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT sum((result->>'stored')::bigint)::bigint FROM job_history
             WHERE kind = 'cashflow.project_many' AND state = 'succeeded'",
        )
        .fetch_one(&pool)
        .await
        .ok()?;
        (n? == due).then_some(())
    })
    .await;
    assert!(
        stored_by_jobs.is_some(),
        "the jobs' stored counts do not add up to {due}"
    );
    let by_zone: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT u.time_zone, p.as_of::text, count(*) FROM cashflow_projections p JOIN users u ON u.id = p.user_id
         GROUP BY 1, 2 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        by_zone,
        vec![
            ("Europe/Paris".into(), "2025-06-01".into(), 500),
            ("Not/AZone".into(), "2025-06-01".into(), 500),
            ("Pacific/Kiritimati".into(), "2025-06-02".into(), 500),
        ]
    );
    // One low-balance e-mail per due user with a shortfall, one send job each: every tenth
    // user has one, 200, of whom the 100 in Pago Pago are not due yet.
    let alerted: i64 = sqlx::query_scalar("SELECT count(*) FROM email_outbox WHERE template = 'low_balance'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let shortfalls: i64 =
        sqlx::query_scalar("SELECT count(*) FROM cashflow_projections WHERE first_shortfall IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((alerted, shortfalls), (100, 100));
    // Counted until one reading agrees with itself: the counts are read one key after another
    // while the e-mail worker moves jobs between them.
    let email = queue(&redis, "email").await;
    let jobs = poll_until(Duration::from_secs(20), || async {
        let c = email.counts().await.ok()?;
        let n = c.queued + c.scheduled + c.running + c.retrying + c.dead + c.succeeded_total;
        (n == 100).then_some(n)
    })
    .await;
    assert_eq!(jobs, Some(100), "{:?}", email.counts().await);
    // Running the fan-out again pushes nobody: they all have today's projection.
    assert_eq!(
        fan_out(&env, uuid::Uuid::now_v7(), at, paging(None), None)
            .await
            .unwrap(),
        0
    );
    app.stop().await;
}

/// A projection job that died after storing its users and before queueing their e-mails runs
/// again: it stores nothing twice and queues the e-mails it owed.
#[tokio::test]
async fn a_projection_batch_run_again_after_storing_sends_the_alerts_it_owed() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    for id in 1..=3 {
        seed_user(&pool, id, "Europe/Paris").await;
    }
    // What the first attempt stored for users 1 and 2: a shortfall each. User 3 was not reached.
    exec(
        &pool,
        "INSERT INTO cashflow_projections (user_id, as_of, opening, inflows, outflows, closing, lowest_balance,
            lowest_date, first_shortfall, threshold)
         SELECT g, '2025-06-01', 0, '{0}', '{0}', '{0}', 0, '2025-06-01', '2025-06-01', 20000
         FROM generate_series(1, 2) g",
    )
    .await;
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(&[Scope::JobsRead, Scope::JobsWrite, Scope::Admin]);
    let users = json!([[1, "2025-06-01"], [2, "2025-06-01"], [3, "2025-06-01"]]);
    let id = app
        .enqueue_id(
            &token,
            json!({"kind": "cashflow.project_many", "payload": {"users": users}}),
        )
        .await;
    let done = app.wait_state(&token, &id, "succeeded", Duration::from_secs(30)).await;
    let result = &done["result"];
    assert!(
        done["progress"].is_null(),
        "a job that reports nothing has no progress: {done}"
    );
    // User 3 (no account, threshold 200.00) is stored now, with a shortfall of their own.
    assert_eq!(
        (result["computed"].as_i64(), result["stored"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(result["alerts"], 3);
    let keys: Vec<String> = sqlx::query_scalar("SELECT message_key FROM email_outbox ORDER BY 1")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        keys,
        [
            "low_balance:1:2025-06-01",
            "low_balance:2:2025-06-01",
            "low_balance:3:2025-06-01"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn cashflow_routes_answer_404_for_unknown_users_and_422_for_bad_dates() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    seed_user(&db.pool().await, 3, "UTC").await;
    let app = App::start(&config(&redis, &db), false).await;
    let token = token(RW);
    let get = |path: String| {
        let (http, token) = (app.http.clone(), token.clone());
        async move { http.get(path).bearer_auth(token).send().await.unwrap() }
    };
    let post = |path: String, body: Value| {
        let (http, token) = (app.http.clone(), token.clone());
        async move { http.post(path).bearer_auth(token).json(&body).send().await.unwrap() }
    };
    let b = &app.base;
    assert_eq!(get(format!("{b}/v1/users/999/cashflow")).await.status(), 404);
    assert_eq!(
        get(format!("{b}/v1/users/3/cashflow")).await.status(),
        404,
        "no projection yet"
    );
    for (resp, field) in [
        (get(format!("{b}/v1/users/abc/cashflow")).await, "id"),
        (get(format!("{b}/v1/users/3/cashflow?as_of=2025-02-30")).await, "as_of"),
        (
            post(format!("{b}/v1/users/3/cashflow/refresh"), json!({"as_of": "tomorrow"})).await,
            "as_of",
        ),
        (
            post(format!("{b}/v1/users/3/cashflow/refresh"), json!({"horizon_days": 0})).await,
            "horizon_days",
        ),
        (get(format!("{b}/v1/users/3/cashflow?as_of=9999-12-31")).await, "as_of"),
    ] {
        assert_eq!(resp.status(), 422);
        assert_eq!(resp.json::<Value>().await.unwrap()["error"]["field"], field);
    }
    // Dates the calendar holds but the finance data does not: each one used to be a 202, and
    // the first panicked in the engine five times before the job died.
    for as_of in [
        "+262142-12-31",
        "9999-12-31",
        "0001-01-01",
        "-0001-01-01",
        "1969-12-31",
        "2200-01-01",
    ] {
        let resp = post(format!("{b}/v1/users/3/cashflow/refresh"), json!({"as_of": as_of})).await;
        assert_eq!(resp.status(), 422, "{as_of}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["field"], "as_of", "{as_of}: {body}");
        let resp = post(
            format!("{b}/v1/jobs"),
            json!({"kind": "cashflow.project", "payload": {"user_id": 3, "as_of": as_of}}),
        )
        .await;
        assert_eq!(resp.status(), 422, "{as_of}");
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"]["field"],
            "payload.as_of",
            "{as_of}"
        );
    }
    let resp = post(
        format!("{b}/v1/jobs"),
        json!({"kind": "cashflow.project", "payload": {"user_id": 3, "horizon_days": 367}}),
    )
    .await;
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["field"],
        "payload.horizon_days"
    );
    assert_eq!(
        post(format!("{b}/v1/users/999/cashflow/refresh"), json!({}))
            .await
            .status(),
        404
    );
    let huge = json!({"as_of": "x".repeat(70 * 1024)});
    let resp = post(format!("{b}/v1/users/3/cashflow/refresh"), huge).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["field"], "body");
    let read_only = nightshift_common::auth::Scope::JobsRead;
    let resp = app
        .http
        .post(format!("{b}/v1/users/3/cashflow/refresh"))
        .bearer_auth(crate::support::token(&[read_only]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    app.stop().await;
}

/// The finance data API end to end: a user fed only through `PUT …/finance` (business-day
/// rules left to their defaults) is projected to the cent; a confined token cannot touch
/// another user; every bad input is a 422 naming its field, and stores nothing.
#[tokio::test]
async fn a_user_fed_only_through_the_finance_api_is_projected_to_the_cent() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(&[
        Scope::JobsRead,
        Scope::JobsWrite,
        Scope::FinanceRead,
        Scope::FinanceWrite,
    ]);
    let put = |user: i64, token: String, body: Value| {
        let http = app.http.clone();
        let url = format!("{}/v1/users/{user}/finance", app.base);
        async move { http.put(url).bearer_auth(token).json(&body).send().await.unwrap() }
    };
    let get = |path: String, token: String| {
        let http = app.http.clone();
        let url = format!("{}{path}", app.base);
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };
    // 2026: Jan 31 and Feb 28 are Saturdays, Feb 1 and Mar 1 Sundays.
    let finance = json!({
        "email": "ana@example.com",
        "time_zone": "Europe/Lisbon",
        "accounts": [{"name": "current", "balance": 100_000}],
        "recurring": [
            // Income by default to the Friday before: Jan 30, then Feb 27 (the 31st clamped to
            // the 28th, a Saturday).
            {"name": "salary", "amount": 250_000, "cadence": "monthly", "anchor_date": "2025-12-31"},
            // A bill by default to the Monday after: Feb 2 and Mar 2.
            {"name": "rent", "amount": -120_000, "cadence": "monthly", "anchor_date": "2026-01-01"}
        ],
        "scheduled": [{"name": "repair", "amount": -5_000, "date": "2026-02-14"}]
    });
    let resp = put(41, token.clone(), finance.clone()).await;
    assert_eq!(resp.status(), 200);
    let stored: Value = resp.json().await.unwrap();
    assert_eq!(
        (stored["accounts"].as_i64(), stored["recurring"].as_i64()),
        (Some(1), Some(2))
    );
    let refresh = stored["refresh_job"].as_str().unwrap().to_string();
    app.wait_state(&token, &refresh, "succeeded", Duration::from_secs(20))
        .await;

    let back: Value = get("/v1/users/41/finance".into(), token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(back["recurring"][0]["business_day"], "previous");
    assert_eq!(back["recurring"][1]["business_day"], "next");
    assert_eq!(back["currency"], "EUR");

    // Waiting for it: the answer is the projection itself.
    let resp = app
        .http
        .post(format!("{}/v1/users/41/cashflow/refresh?wait=5", app.base))
        .bearer_auth(&token)
        .json(&json!({"as_of": "2026-01-25", "horizon_days": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let p: Value = resp.json().await.unwrap();
    assert_eq!(
        p,
        get("/v1/users/41/cashflow?as_of=2026-01-25".into(), token.clone())
            .await
            .json::<Value>()
            .await
            .unwrap()
    );
    // Every day, from the hand-computed movements.
    let moves = [
        ("2026-01-30", 250_000),
        ("2026-02-02", -120_000),
        ("2026-02-14", -5_000),
        ("2026-02-27", 250_000),
        ("2026-03-02", -120_000),
    ];
    let days = p["days"].as_array().unwrap();
    assert_eq!(days.len(), 60);
    let mut balance = 100_000;
    for day in days {
        let date = day["date"].as_str().unwrap();
        balance += moves.iter().filter(|(d, _)| *d == date).map(|(_, m)| m).sum::<i64>();
        assert_eq!(day["closing"], balance, "{date}");
    }
    assert_eq!(balance, 355_000);
    assert_eq!(days[59]["date"], "2026-03-25");
    assert_eq!(
        (p["currency"].as_str(), p["role"].as_str()),
        (Some("EUR"), Some("what_if"))
    );
    assert_eq!(days[5]["inflow"], 250_000, "Jan 30");
    assert_eq!(days[0]["outflow"], 0, "never null");
    // Each day names what made it: Jan 30 the salary, moved from Saturday the 31st.
    let salary_id = back["recurring"][0]["id"].as_i64().unwrap();
    assert_eq!(
        days[5]["items"],
        json!([{"id": salary_id, "source": "recurring", "name": "salary", "amount": 250_000}])
    );
    assert_eq!(days[20]["items"][0]["source"], "scheduled", "Feb 14: the repair");
    assert_eq!(days[4]["items"], json!([]));
    assert_eq!(
        (p["include_as_of"].as_bool(), p["balance_date"].as_str()),
        (Some(false), None)
    );

    // The PUT's own refresh made the current projection (as of the user's today); a what-if
    // for a later date is stored beside it and never replaces it.
    let current: Value = get("/v1/users/41/cashflow".into(), token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["role"], "current");
    let today = current["as_of"].as_str().unwrap().to_string();
    let resp = app
        .http
        .post(format!("{}/v1/users/41/cashflow/refresh", app.base))
        .bearer_auth(&token)
        .json(&json!({"as_of": "2199-06-01", "horizon_days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "no wait: the job at once");
    let accepted: Value = resp.json().await.unwrap();
    assert_eq!(accepted["as_of"], "2199-06-01");
    let job = accepted["id"].as_str().unwrap().to_string();
    // Without a date the 202 names the day it will use: the user's today.
    let resp = app
        .http
        .post(format!("{}/v1/users/41/cashflow/refresh", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["as_of"], today.as_str());
    app.wait_state(&token, &job, "succeeded", Duration::from_secs(20)).await;
    let still: Value = get("/v1/users/41/cashflow".into(), token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (still["as_of"].as_str(), still["role"].as_str()),
        (Some(today.as_str()), Some("current"))
    );
    let what_if: Value = get("/v1/users/41/cashflow?as_of=2199-06-01".into(), token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(what_if["role"], "what_if");
    let listed: Value = get("/v1/users/41/cashflow/projections".into(), token.clone())
        .await
        .json()
        .await
        .unwrap();
    let roles: Vec<(String, String)> = listed["projections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["as_of"].as_str().unwrap().into(), p["role"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        roles,
        [
            ("2199-06-01".to_string(), "what_if".to_string()),
            (today.clone(), "current".into()),
            ("2026-01-25".into(), "what_if".into())
        ]
    );
    let delete = |as_of: &str| {
        let (http, token) = (app.http.clone(), token.clone());
        let url = format!("{}/v1/users/41/cashflow?as_of={as_of}", app.base);
        async move { http.delete(url).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(delete("2199-06-01").await, 204);
    assert_eq!(delete("2199-06-01").await, 404);
    assert_eq!(delete("2199-13-01").await, 422);
    let listed: Value = get("/v1/users/41/cashflow/projections".into(), token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["projections"].as_array().unwrap().len(), 2);

    // A token confined to user 42 neither reads nor writes user 41, nor learns it exists.
    let confined = keys()
        .issue_for(
            "app",
            Some(42),
            &[Scope::FinanceRead, Scope::FinanceWrite, Scope::JobsWrite],
            Duration::from_secs(600),
        )
        .unwrap();
    assert_eq!(put(41, confined.clone(), finance.clone()).await.status(), 404);
    assert_eq!(get("/v1/users/41/finance".into(), confined.clone()).await.status(), 404);
    assert_eq!(
        put(42, confined.clone(), finance.clone()).await.status(),
        200,
        "its own user"
    );
    // Without the finance scopes, a job token may not write finance data.
    assert_eq!(put(41, crate::support::token(RW), finance.clone()).await.status(), 403);

    let with = |pointer: &str, value: Value| {
        let mut body = finance.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        match body.pointer_mut(parent).unwrap() {
            Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
            object => object[key] = value,
        }
        body
    };
    for (body, field) in [
        (
            with("/recurring/0/cadence", json!("fortnightly")),
            "recurring[0].cadence",
        ),
        (
            with(
                "/recurring/0",
                json!({"name": "gym", "amount": -3000, "cadence": "weekly", "anchor_date": "2026-01-05", "days_of_month": [31]}),
            ),
            "recurring[0].days_of_month",
        ),
        (with("/recurring/0/occurrences", json!(-1)), "recurring[0].occurrences"),
        (
            with("/recurring/0/anchor_date", json!("2026-02-30")),
            "recurring[0].anchor_date",
        ),
        (
            with("/recurring/0/anchor_date", json!("+262142-12-31")),
            "recurring[0].anchor_date",
        ),
        (
            with("/recurring/1/end_date", json!("2025-06-01")),
            "recurring[1].end_date",
        ),
        (with("/recurring/1/amount", json!(0)), "recurring[1].amount"),
        (
            with("/recurring/1/cadence", json!("every_n_weeks")),
            "recurring[1].interval_weeks",
        ),
        (with("/scheduled/0/date", json!("1969-12-31")), "scheduled[0].date"),
        (
            with("/accounts/0/balance", json!(10_000_000_000_000i64)),
            "accounts[0].balance",
        ),
        (with("/accounts/0/name", json!(" ")), "accounts[0].name"),
        (with("/time_zone", json!("Mars/Olympus_Mons")), "time_zone"),
        (with("/currency", json!("eur")), "currency"),
        (with("/email", json!("not an address")), "email"),
    ] {
        let resp = put(41, token.clone(), body).await;
        assert_eq!(resp.status(), 422, "{field}");
        let error: Value = resp.json().await.unwrap();
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    let after: Value = get("/v1/users/41/finance".into(), token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after, back, "a refused replacement stores nothing");

    // A thousand recurring items are more than a job's 64 KiB body: the route takes 1 MiB.
    let mut big = finance.clone();
    big["recurring"] = json!(
        (0..1000)
            .map(|i| json!({"name": format!("subscription number {i}"), "amount": -100 - i, "cadence": "monthly", "anchor_date": "2026-01-15"}))
            .collect::<Vec<_>>()
    );
    let resp = put(41, token.clone(), big.clone()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["recurring"], 1000);
    let one_more = big["recurring"][0].clone();
    big["recurring"].as_array_mut().unwrap().push(one_more);
    let resp = put(41, token.clone(), big).await;
    assert_eq!(resp.status(), 422);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["field"], "recurring");
    app.stop().await;
}

/// Each finance item on its own: created, listed, read, replaced and deleted, each change
/// queueing a projection; an account's balance read on a day is rolled to the projected day,
/// with or without that day's own items in it; ids are the user's alone.
#[tokio::test]
async fn finance_items_one_by_one_and_balances_read_on_another_day() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(&[
        Scope::JobsRead,
        Scope::JobsWrite,
        Scope::FinanceRead,
        Scope::FinanceWrite,
    ]);
    let call = |method: &str, path: &str, body: Option<Value>| {
        let req = app
            .http
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .bearer_auth(&token);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // The user first, then each item: no bulk call anywhere.
    let (status, _) = call("GET", "/v1/users/50", None).await;
    assert_eq!(status, 404);
    let (status, profile) = call("PUT", "/v1/users/50", Some(json!({"email": " ana@example.com "}))).await;
    assert_eq!(
        (status, &profile["email"], &profile["time_zone"]),
        (200, &json!("ana@example.com"), &json!("UTC"))
    );
    let (status, account) = call(
        "POST",
        "/v1/users/50/accounts",
        Some(json!({"name": "current", "balance": 100_000, "balance_date": "2026-03-01"})),
    )
    .await;
    assert_eq!(status, 201, "{account}");
    let account_id = account["id"].as_i64().unwrap();
    // 2026-03-01 is a Sunday: the salary stays there (business_day none), rent on Tuesday the 3rd.
    let (_, salary) = call(
        "POST",
        "/v1/users/50/recurring",
        Some(json!({"name": "salary", "amount": 100_000, "cadence": "monthly", "anchor_date": "2026-01-01", "business_day": "none"})),
    )
    .await;
    let (status, rent) = call(
        "POST",
        "/v1/users/50/recurring",
        Some(json!({"name": "rent", "amount": -60_000, "cadence": "monthly", "anchor_date": "2026-01-03"})),
    )
    .await;
    assert_eq!(
        (status, &rent["business_day"]),
        (201, &json!("next")),
        "a bill's default rule"
    );
    let rent_id = rent["id"].as_i64().unwrap();
    let (status, repair) = call(
        "POST",
        "/v1/users/50/scheduled",
        Some(json!({"name": "repair", "amount": -5_000, "date": "2026-03-04"})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, listed) = call("GET", "/v1/users/50/recurring", None).await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["salary", "rent"]);
    let (status, one) = call("GET", &format!("/v1/users/50/recurring/{rent_id}"), None).await;
    assert_eq!((status, one), (200, rent.clone()));

    // The changes queued projections: the current one appears without a refresh asked for.
    let current = poll_until(Duration::from_secs(20), || async {
        let (status, p) = call("GET", "/v1/users/50/cashflow", None).await;
        (status == 200).then_some(p)
    })
    .await;
    assert!(current.is_some(), "no projection after the changes");

    let project = |include: bool| {
        let body = json!({"as_of": "2026-03-03", "horizon_days": 3, "include_as_of": include});
        let (http, token) = (app.http.clone(), token.clone());
        let url = format!("{}/v1/users/50/cashflow/refresh?wait=5", app.base);
        async move {
            let resp = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };
    // Read on Mar 1 before its salary: the salary is added on the way to Mar 3.
    let p = project(false).await;
    assert_eq!(
        (p["opening"].as_i64(), p["balance_date"].as_str()),
        (Some(200_000), Some("2026-03-01"))
    );
    let closing: Vec<i64> = p["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["closing"].as_i64().unwrap())
        .collect();
    assert_eq!(closing, [140_000, 135_000, 135_000]);
    assert_eq!(
        p["days"][0]["items"],
        json!([{"id": rent_id, "source": "recurring", "name": "rent", "amount": -60_000}])
    );
    assert_eq!(p["days"][1]["items"][0]["id"], repair["id"]);
    // Read on Mar 1 with the salary already in it: not counted twice.
    let p = project(true).await;
    assert_eq!(
        (p["opening"].as_i64(), p["include_as_of"].as_bool()),
        (Some(100_000), Some(true))
    );

    // Replaced: the rent goes up; the same id, and the next projection uses it.
    let (status, replaced) = call(
        "PUT",
        &format!("/v1/users/50/recurring/{rent_id}"),
        Some(json!({"name": "rent", "amount": -70_000, "cadence": "monthly", "anchor_date": "2026-01-03"})),
    )
    .await;
    assert_eq!((status, replaced["id"].as_i64()), (200, Some(rent_id)));
    let p = project(false).await;
    assert_eq!(p["days"][0]["closing"], 130_000);
    // Deleted: gone, and a second delete is a 404.
    let path = format!("/v1/users/50/scheduled/{}", repair["id"]);
    assert_eq!(call("DELETE", &path, None).await.0, 204);
    assert_eq!(call("DELETE", &path, None).await.0, 404);
    assert_eq!(call("GET", &path, None).await.0, 404);

    // Bad input names the field and stores nothing.
    for (method, path, body, field) in [
        (
            "POST",
            "/v1/users/50/recurring".to_string(),
            json!({"name": "gym", "amount": -3000, "cadence": "weekly", "anchor_date": "2026-01-05", "days_of_month": [31]}),
            "days_of_month",
        ),
        (
            "POST",
            "/v1/users/50/recurring".into(),
            json!({"name": "gym", "amount": -3000, "cadence": "quarterly", "anchor_date": "2026-01-05"}),
            "cadence",
        ),
        (
            "POST",
            "/v1/users/50/recurring".into(),
            json!({"name": "gym", "amount": -3000, "cadence": "monthly", "anchor_date": "2026-01-05", "occurrences": -2}),
            "occurrences",
        ),
        (
            "POST",
            "/v1/users/50/accounts".into(),
            json!({"name": "x", "balance": 1, "balance_date": "2200-01-01"}),
            "balance_date",
        ),
        (
            "POST",
            "/v1/users/50/accounts".into(),
            json!({"id": 1, "name": "x", "balance": 1}),
            "id",
        ),
        (
            "POST",
            "/v1/users/50/scheduled".into(),
            json!({"name": "x", "amount": 0, "date": "2026-01-01"}),
            "amount",
        ),
        (
            "PUT",
            format!("/v1/users/50/recurring/{rent_id}"),
            json!({"id": rent_id + 1, "name": "rent", "amount": -1, "cadence": "monthly", "anchor_date": "2026-01-03"}),
            "id",
        ),
        (
            "PUT",
            "/v1/users/50/accounts/zero".into(),
            json!({"name": "x", "balance": 1}),
            "item_id",
        ),
        (
            "PUT",
            "/v1/users/50".into(),
            json!({"email": "ana@example.com", "time_zone": "Mars/Olympus_Mons"}),
            "time_zone",
        ),
    ] {
        let (status, error) = call(method, &path, Some(body)).await;
        assert_eq!(
            (status, error["error"]["field"].as_str()),
            (422, Some(field)),
            "{method} {path}: {error}"
        );
    }
    let (_, accounts) = call("GET", "/v1/users/50/accounts", None).await;
    assert_eq!(accounts.as_array().unwrap().len(), 1);

    // The bulk read gives ids; writing it back keeps them. An id of another user's item is refused.
    let (_, whole) = call("GET", "/v1/users/50/finance", None).await;
    assert_eq!(call("PUT", "/v1/users/50/finance", Some(whole.clone())).await.0, 200);
    let (_, again) = call("GET", "/v1/users/50/finance", None).await;
    assert_eq!(again, whole);
    // One of the user's ids given twice is a 422 naming the second, never the primary key's
    // violation.
    let mut twice = whole.clone();
    let first = twice["accounts"][0].clone();
    let accounts = twice["accounts"].as_array_mut().unwrap();
    accounts.insert(0, json!({"name": "new", "balance": 5}));
    accounts.push(first);
    let (status, error) = call("PUT", "/v1/users/50/finance", Some(twice)).await;
    assert_eq!(
        (
            status,
            error["error"]["field"].as_str(),
            error["error"]["message"].as_str()
        ),
        (422, Some("accounts[2].id"), Some("appears twice")),
        "{error}"
    );
    let (status, _) = call("PUT", "/v1/users/51", Some(json!({"email": "bo@example.com"}))).await;
    assert_eq!(status, 200);
    let theirs = json!({"email": "bo@example.com", "accounts": [{"id": account_id, "name": "mine now", "balance": 1}]});
    let (status, error) = call("PUT", "/v1/users/51/finance", Some(theirs)).await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (422, Some("accounts[0].id"))
    );
    assert_eq!(
        call("GET", &format!("/v1/users/51/accounts/{account_id}"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        call(
            "PUT",
            &format!("/v1/users/51/recurring/{}", salary["id"]),
            Some(json!({"name": "rent", "amount": -1, "cadence": "monthly", "anchor_date": "2026-01-03"}))
        )
        .await
        .0,
        404
    );

    // A user confined to 51 reaches nothing of 50's.
    let confined = keys()
        .issue_for(
            "app",
            Some(51),
            &[Scope::FinanceRead, Scope::FinanceWrite],
            Duration::from_secs(600),
        )
        .unwrap();
    for (method, path) in [
        ("GET", "/v1/users/50".to_string()),
        ("GET", "/v1/users/50/accounts".into()),
        ("GET", format!("/v1/users/50/accounts/{account_id}")),
        ("DELETE", format!("/v1/users/50/recurring/{rent_id}")),
        ("DELETE", "/v1/users/50".into()),
    ] {
        let resp = app
            .http
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .bearer_auth(&confined)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{method} {path}");
    }
    // Deleting the user takes everything of theirs with it.
    assert_eq!(call("DELETE", "/v1/users/50", None).await.0, 204);
    assert_eq!(call("GET", "/v1/users/50/accounts", None).await.0, 404);
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM accounts WHERE user_id = 50) + (SELECT count(*) FROM recurring_items WHERE user_id = 50)
            + (SELECT count(*) FROM cashflow_projections WHERE user_id = 50)",
    )
    .fetch_one(&db.pool().await)
    .await
    .unwrap();
    assert_eq!(left, 0);
    app.stop().await;
}

/// The nightly run as a batch over 5,000 users, three of whose pages die (a trigger refuses
/// their users' projections, and the run allows one attempt a page): the run's summary, written
/// once by the batch's callback, counts the users, the projected and the failed.
#[tokio::test]
async fn a_nightly_run_is_a_batch_whose_callback_records_its_summary_once() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    let at: DateTime<Utc> = "2025-06-01T12:30:00Z".parse().unwrap();
    exec(
        &pool,
        "INSERT INTO users (id, email, time_zone) SELECT g, 'u' || g || '@example.com', 'Europe/Paris'
         FROM generate_series(1, 5000) g",
    )
    .await;
    exec(
        &pool,
        "INSERT INTO accounts (user_id, name, balance) SELECT id, 'main', 1000 FROM users",
    )
    .await;
    // Users 10, 2600 and 4999 cannot be stored: their pages (1-500, 2501-3000, 4501-5000) die.
    exec(
        &pool,
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.user_id IN (10, 2600, 4999) THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$",
    )
    .await;
    exec(
        &pool,
        "CREATE TRIGGER refuse BEFORE INSERT ON cashflow_projections FOR EACH ROW EXECUTE FUNCTION refuse()",
    )
    .await;
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(&[Scope::JobsRead, Scope::JobsWrite, Scope::Admin]);
    let run = app
        .enqueue_id(
            &token,
            json!({"kind": "cashflow.nightly", "payload": {"at": at, "page_attempts": 1}}),
        )
        .await;
    let (users, projected, failed, jobs, dead): (i32, i32, i32, i32, i32) =
        poll_until(Duration::from_secs(90), || async {
            sqlx::query_as(
                "SELECT users, projected, failed, jobs, dead_jobs FROM cashflow_runs WHERE batch_id = $1::uuid",
            )
            .bind(&run)
            .fetch_optional(&pool)
            .await
            .ok()?
        })
        .await
        .expect("the run's summary is recorded");
    assert_eq!((users, projected, failed, jobs, dead), (5000, 3500, 1500, 10, 3));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM cashflow_projections")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 3500);
    // Its batch, readable by the operator: finished, one callback, run once.
    let b: Value = app
        .http
        .get(format!("{}/v1/batches/{run}", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&b["state"], &b["succeeded"], &b["dead"]),
        (&json!("finished"), &json!(7), &json!(3)),
        "{b}"
    );
    let callbacks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM job_history WHERE kind = 'cashflow.nightly_done' AND payload->'batch'->>'id' = $1",
    )
    .bind(&run)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(callbacks, 1);
    app.stop().await;
}

//! Cashflow projections end to end: hand-computed balances through the API, idempotent
//! re-runs, and the nightly fan-out by local time zone.
use std::time::Duration;

use chrono::{DateTime, Utc};
use nightshift_common::auth::Scope;
use nightshift_queue::connect_redis;
use nightshift_workers::jobs::{JobEnv, cashflow::nightly::fan_out};
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

#[tokio::test]
async fn the_nightly_fan_out_projects_each_due_user_once_even_when_restarted_half_way() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    // 12:30 UTC: 14:30 in Paris, 02:30 the next day in Kiritimati, 01:30 in Pago Pago (not yet due).
    let at: DateTime<Utc> = "2025-06-01T12:30:00Z".parse().unwrap();
    exec(
        &pool,
        "INSERT INTO users (id, email, time_zone)
         SELECT g, 'u' || g || '@example.com',
                (ARRAY['Europe/Paris', 'Pacific/Kiritimati', 'Pacific/Pago_Pago', 'Not/AZone'])[1 + g % 4]
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
    assert_eq!(fan_out(&env, at, 250, Some(2)).await.unwrap(), 500);
    // ...and the queue runs it again with workers going.
    let app = App::start(&config, true).await;
    // cashflow.nightly is an operator kind.
    let token = token(&[Scope::JobsRead, Scope::JobsWrite, Scope::Admin]);
    let nightly = app
        .enqueue_id(&token, json!({"kind": "cashflow.nightly", "payload": {"at": at}}))
        .await;
    app.wait_state(&token, &nightly, "succeeded", Duration::from_secs(30))
        .await;
    let due = 1500; // every user but Pago Pago's
    let q = queue(&redis, "cashflow").await;
    // On a timeout, say where the jobs are: this test failed twice (of about fifty runs) while
    // the machine was compiling, and the counts tell a slow run from a lost job.
    let projected = poll_until(Duration::from_secs(60), || async {
        (q.counts().await.ok()?.succeeded_total >= due).then_some(())
    })
    .await;
    assert!(
        projected.is_some(),
        "not every due user projected: {:?}",
        q.counts().await
    );
    let c = q.counts().await.unwrap();
    assert_eq!(
        (c.succeeded_total, c.queued, c.running, c.dead),
        (due, 0, 0, 0),
        "one projection job per due user"
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
    // Running the fan-out again pushes nobody: they all have today's projection.
    assert_eq!(fan_out(&env, at, 250, None).await.unwrap(), 0);
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

//! The trust model, tried as an attacker would: with nothing but tokens the API hands out,
//! against a running platform on real Redis and PostgreSQL. One regression test per hole
//! found, then a table of hostile requests replayed in one go: each must get its status,
//! push nothing, write nothing, and leave the platform healthy with its history advancing.
use std::time::Duration;

use nightshift_common::auth::Scope;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const RW: &[Scope] = &[Scope::JobsRead, Scope::JobsWrite];

fn token_for(sub: &str, user: Option<i64>, scopes: &[Scope]) -> String {
    keys().issue_for(sub, user, scopes, Duration::from_secs(600)).unwrap()
}

async fn add_users(db: &TestDb, ids: &[i64]) {
    let pool = db.pool().await;
    for id in ids {
        sqlx::query("INSERT INTO users (id, email, time_zone) VALUES ($1, 'u' || $1 || '@example.com', 'UTC')")
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
}

/// Sends raw bytes as the body of `POST path` (reqwest's `.json` could not send trailing bytes).
async fn post_raw(app: &App, token: &str, path: &str, body: &'static str) -> (u16, Value) {
    let resp = app
        .http
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Jobs in every queue's Redis sets, whatever their state.
async fn jobs_in_redis(redis: &PrivateRedis) -> u64 {
    let mut total = 0;
    for name in nightshift_catalog::queue_names() {
        let c = queue(redis, name).await.counts().await.unwrap();
        total += c.scheduled + c.queued + c.running + c.retrying + c.dead + c.succeeded_total + c.cancelled_total;
    }
    total
}

async fn history_rows(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM job_history")
        .fetch_one(&db.pool().await)
        .await
        .unwrap()
}

/// A job enqueued now runs and its success reaches the history: the writer is not wedged.
async fn history_advances(app: &App, db: &TestDb) {
    let id = app.enqueue_id(&token(RW), json!({"kind": "noop"})).await;
    let pool = db.pool().await;
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    wait_for("the job's success in the history", Duration::from_secs(20), || async {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM job_history WHERE id = $1")
            .bind(uuid)
            .fetch_optional(&pool)
            .await
            .unwrap();
        (state.as_deref() == Some("succeeded")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn trailing_bytes_and_nul_characters_are_refused_before_anything_is_pushed() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    add_users(&db, &[1]).await;
    let app = App::start(&config(&redis, &db), true).await;
    let admin = token(&Scope::ALL);
    let cases: [(&str, &'static str, u16, &str); 9] = [
        ("/v1/users/1/accounts", r#"{"name":"a\u0000","balance":1}"#, 422, "name"),
        (
            "/v1/jobs/batch",
            r#"{"jobs":[{"kind":"noop"},{"kind":"diag.fail","payload":{"message":"a\u0000b"}}]}"#,
            422,
            "jobs[1].payload.message",
        ),
        ("/v1/jobs/batch", r#"{"jobs":[{"kind":"noop"}]} []"#, 400, "body"),
        (
            "/v1/jobs",
            r#"{"kind":"diag.fail","payload":{"message":"a\u0000b"}}x"#,
            400,
            "body",
        ),
        ("/v1/jobs", r#"{"kind":"noop"} {"kind":"noop"}"#, 400, "body"),
        (
            "/v1/jobs",
            r#"{"kind":"diag.fail","payload":{"message":"a\u0000b"}}"#,
            422,
            "payload.message",
        ),
        (
            "/v1/users/1/reminders",
            r#"{"title":"a\u0000","amount":-1,"due_date":"2027-01-01"}"#,
            422,
            "title",
        ),
        (
            "/v1/emails",
            r#"{"template":"password_reset","to":"a@example.com","vars":{"name":"\u0000"}}"#,
            422,
            "vars.name",
        ),
        (
            "/v1/emails",
            r#"{"template":"password_reset","to":"a@example.com"}]"#,
            400,
            "body",
        ),
    ];
    for (path, body, status, field) in cases {
        let (got, err) = post_raw(&app, &admin, path, body).await;
        assert_eq!(
            (got, err["error"]["field"].as_str()),
            (status, Some(field)),
            "{path} {body}: {err}"
        );
    }
    assert_eq!(
        jobs_in_redis(&redis).await,
        0,
        "nothing of a refused request was pushed"
    );
    // The dashboard's filters refuse a NUL by name too (signed in as an operator).
    let cookie = sign_in(&app, &admin).await;
    for query in ["kind=%00", "q=user_id%3D%00"] {
        let page = no_redirects()
            .get(format!("{}/dashboard/jobs?{query}", app.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 422, "{query}");
    }
    history_advances(&app, &db).await;
    app.stop().await;
}

#[tokio::test]
async fn client_tokens_enqueue_client_kinds_only_and_operators_the_rest_but_internal_ones() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    add_users(&db, &[1]).await;
    let mut config = config(&redis, &db);
    config.diagnostics = false;
    let app = App::start(&config, false).await;
    let (client, admin) = (token(RW), token(&Scope::ALL));
    let operator_kinds = [
        json!({"kind": "secrets.rotate", "payload": {"force": true}}),
        json!({"kind": "maintenance.cleanup", "payload": {}}),
        json!({"kind": "backup.run", "payload": {}}),
        json!({"kind": "backup.verify", "payload": {}}),
        json!({"kind": "cashflow.nightly", "payload": {}}),
        json!({"kind": "reminder.scan", "payload": {"lookback_hours": 336}}),
    ];
    for body in &operator_kinds {
        let r = app.enqueue(&client, body.clone(), None).await;
        let status = r.status().as_u16();
        let err: Value = r.json().await.unwrap();
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (403, Some("kind")),
            "{body}: {err}"
        );
    }
    for kind in ["email.send", "reminder.notify", "webhook.send"] {
        for t in [&client, &admin] {
            let r = app.enqueue(t, json!({"kind": kind, "payload": {}}), None).await;
            assert_eq!(r.status(), 403, "{kind} is internal: not even an operator enqueues it");
        }
    }
    // Diagnostic kinds do not exist here: an unknown kind, and the list names only the
    // kinds this caller may use.
    let r = app.enqueue(&client, json!({"kind": "diag.abort"}), None).await;
    assert_eq!(r.status(), 422);
    let message = r.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = message.split("yours to use:").nth(1).unwrap_or_default();
    assert!(listed.contains("cashflow.project"), "{message}");
    for hidden in ["noop", "diag.", "secrets.rotate", "email.send"] {
        assert!(!listed.contains(hidden), "{hidden} listed to a client: {message}");
    }
    assert_eq!(jobs_in_redis(&redis).await, 0);
    // An operator may, and so may a client with a client kind.
    let r = app.enqueue(&admin, operator_kinds[1].clone(), None).await;
    assert_eq!(r.status(), 202);
    let r = app
        .enqueue(
            &client,
            json!({"kind": "cashflow.project", "payload": {"user_id": 1}}),
            None,
        )
        .await;
    assert_eq!(r.status(), 202);
    // The OpenAPI document lists the client kinds only.
    let doc: Value = app
        .http
        .get(format!("{}/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = &doc["components"]["schemas"]["JobKind"]["enum"];
    assert_eq!(listed, &json!(["cashflow.project"]));
    app.stop().await;
}

#[tokio::test]
async fn a_user_confined_token_sees_only_its_user_and_every_other_is_a_404() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    add_users(&db, &[1001, 1002]).await;
    let app = App::start(&config(&redis, &db), false).await;
    let scopes = [
        Scope::JobsRead,
        Scope::JobsWrite,
        Scope::RemindersRead,
        Scope::RemindersWrite,
    ];
    let service = token_for("finance-app", None, &scopes);
    let alice = token_for("finance-app", Some(1001), &scopes);
    let bob = token_for("finance-app", Some(1002), &scopes);
    // Alice's webhook, made by the service on her behalf.
    let hook: Value = app
        .http
        .post(format!("{}/v1/users/1001/webhooks", app.base))
        .bearer_auth(&service)
        .json(&json!({"url": "https://hooks.example.com/a"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hook_id = hook["id"].as_i64().unwrap();
    let get = |t: &str, path: &str| {
        let req = app.http.get(format!("{}{path}", app.base)).bearer_auth(t);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let post = |t: &str, path: String| {
        let req = app.http.post(format!("{}{path}", app.base)).bearer_auth(t);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(&bob, "/v1/users/1001/cashflow").await, 404);
    assert_eq!(get(&bob, "/v1/users/1001/webhooks").await, 404);
    assert_eq!(get(&bob, "/v1/users/1001/reminders").await, 404);
    assert_eq!(
        post(&bob, format!("/v1/users/1001/webhooks/{hook_id}/rotate")).await,
        404
    );
    assert_eq!(post(&bob, "/v1/users/1001/cashflow/refresh".into()).await, 404);
    // The same 404 as for a user that does not exist: nothing tells them apart.
    assert_eq!(get(&bob, "/v1/users/999999/webhooks").await, 404);
    assert_eq!(get(&alice, "/v1/users/1001/webhooks").await, 200);
    assert_eq!(
        post(&alice, format!("/v1/users/1001/webhooks/{hook_id}/rotate")).await,
        200
    );
    // Jobs: only for its own user; read by it and by its service, not by another user.
    let project = |user: i64| json!({"kind": "cashflow.project", "payload": {"user_id": user}});
    assert_eq!(app.enqueue(&bob, project(1001), None).await.status(), 404);
    let id = app.enqueue_id(&alice, project(1001)).await;
    assert_eq!(app.status(&alice, &id).await.status(), 200);
    assert_eq!(app.status(&service, &id).await.status(), 200);
    assert_eq!(app.status(&bob, &id).await.status(), 404);
    let stranger = token_for("another-service", None, &scopes);
    assert_eq!(app.status(&stranger, &id).await.status(), 404);
    // A kind that acts on no one user is not for a confined token.
    let r = app.enqueue(&alice, json!({"kind": "noop"}), None).await;
    assert_eq!(r.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn subjects_with_colons_never_share_idempotency_or_email_keys() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let scopes = [Scope::JobsRead, Scope::JobsWrite, Scope::EmailsSend];
    let (svc_x, svc) = (token_for("svc:x", None, &scopes), token_for("svc", None, &scopes));
    let sent = app
        .http
        .post(format!("{}/v1/emails", app.base))
        .bearer_auth(&svc_x)
        .json(&json!({"template": "password_reset", "to": "victim@example.com",
                      "vars": {"name": "V", "reset_url": "https://app.example.com/r/1", "expires_minutes": 30},
                      "idempotency_key": "k1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 202, "{:?}", sent.text().await);
    let peek = app
        .http
        .get(format!("{}/v1/emails/x:k1", app.base))
        .bearer_auth(&svc)
        .send()
        .await
        .unwrap();
    assert_eq!(peek.status(), 404, "svc read svc:x's e-mail");
    let a = app.enqueue(&svc_x, json!({"kind": "noop"}), Some("k2")).await;
    let b = app.enqueue(&svc, json!({"kind": "noop"}), Some("x:k2")).await;
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_ne!(a["id"], b["id"], "two clients' keys met");
    app.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_reused_for_a_kind_of_another_queue_is_a_422_and_pushes_nothing() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    add_users(&db, &[1]).await;
    let app = App::start(&config(&redis, &db), false).await;
    let t = token(RW);
    let first = app
        .enqueue(
            &t,
            json!({"kind": "cashflow.project", "payload": {"user_id": 1}}),
            Some("once"),
        )
        .await;
    assert_eq!(first.status(), 202);
    let again = app.enqueue(&t, json!({"kind": "noop"}), Some("once")).await;
    assert_eq!(again.status(), 422);
    let err: Value = again.json().await.unwrap();
    assert_eq!(err["error"]["field"], "Idempotency-Key");
    assert_eq!(queue(&redis, "default").await.counts().await.unwrap().queued, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_locked_out_address_gets_no_token_verified_and_the_scheme_is_case_insensitive() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.api_limits.auth_failures = (2, 2);
    let app = App::start(&config, false).await;
    let good = token(RW);
    let get = |auth: String| {
        let req = app
            .http
            .get(format!("{}/v1/jobs/{}", app.base, uuid::Uuid::now_v7()))
            .header("authorization", auth);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(format!("bearer {good}")).await, 404, "lower-case scheme");
    assert_eq!(get(format!("BEARER {good}")).await, 404, "upper-case scheme");
    // A token issued in the future is refused, signature or not.
    let now = chrono::Utc::now().timestamp();
    let future = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "x", "scope": "jobs:read", "iat": now + 3600, "exp": now + 7200,
                "iss": "nightshift", "aud": "nightshift-api"}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(get(format!("Bearer {future}")).await, 401);
    assert_eq!(get("Bearer guess".into()).await, 401);
    // The budget (2) is spent: now even a good token is not looked at.
    assert_eq!(get(format!("Bearer {good}")).await, 429);
    app.stop().await;
}

#[tokio::test]
async fn metrics_are_not_on_the_api_port_and_the_dashboard_answers_only_its_own_host_names() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let metrics = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(metrics.status(), 404);
    let port = app.base.rsplit(':').next().unwrap();
    for (host, status) in [
        (format!("127.0.0.1:{port}"), 303),
        (format!("localhost:{port}"), 303),
        (format!("rebound.attacker.example:{port}"), 421),
        ("127.0.0.1".to_string(), 421),
    ] {
        let resp = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{}/dashboard", app.base))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "Host: {host}");
    }
    app.stop().await;
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_operator_session() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let admin = token(&Scope::ALL);
    let (one, two) = (sign_in(&app, &admin).await, sign_in(&app, &admin).await);
    let page_of = |cookie: &str| {
        let req = no_redirects()
            .get(format!("{}/dashboard", app.base))
            .header("cookie", cookie);
        async move { req.send().await.unwrap() }
    };
    for c in [&one, &two] {
        assert_eq!(page_of(c).await.status(), 200);
    }
    let page = page_of(&one).await.text().await.unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries its CSRF token")
        .to_string();
    let out = no_redirects()
        .post(format!("{}/dashboard/logout-everywhere", app.base))
        .header("cookie", &one)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    for c in [&one, &two] {
        let r = page_of(c).await;
        assert_eq!(r.status(), 303, "still signed in");
        assert_eq!(r.headers()["location"], "/dashboard/login");
    }
    app.stop().await;
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_health_answers_while_500_of_them_hang() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.server.header_read_timeout = Duration::from_secs(3);
    // All 500 come from this one address: the per-address cap (its own test) would refuse most
    // of them at once, and health's request with them.
    config.server.max_connections_per_ip = 0;
    let app = App::start(&config, false).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        // Headers begun, never finished.
        s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(s);
    }
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    for _ in 0..5 {
        let live = quick.get(format!("{}/health/live", app.base)).send().await;
        assert_eq!(
            live.map(|r| r.status().as_u16()).ok(),
            Some(200),
            "health did not answer within 1 s"
        );
    }
    // Each hanging connection is closed by the server after the header-read timeout.
    for mut s in slow {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(_)) | Ok(Err(_))),
            "a slow client was still connected after 30 s"
        );
    }
    app.stop().await;
}

/// Clients that pipeline requests and never read the answers hold a connection only until the
/// write timeout; meanwhile the ops listener, with its own cap, answers readiness.
#[tokio::test]
async fn clients_that_never_read_their_answers_are_cut_and_readiness_answers_on_the_ops_port() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.server.max_connections = 100;
    config.server.max_connections_per_ip = 0;
    config.server.write_timeout = Duration::from_secs(2);
    let app = App::start(&config, false).await;
    let ops = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ops_base = format!("http://{}", ops.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    let state = nightshift_api::state(&config, keys()).await.unwrap();
    tokio::spawn(nightshift_api::serve_ops(
        ops,
        Some(state),
        stop.clone().cancelled_owned(),
    ));
    let addr = app.base.trim_start_matches("http://").to_string();
    let pipelined = "GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(200);
    let mut hogs = Vec::new();
    for _ in 0..110 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(pipelined.as_bytes()).await.unwrap();
        hogs.push(s);
    }
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let ready = quick.get(format!("{ops_base}/health/ready")).send().await;
    assert_eq!(
        ready.map(|r| r.status().as_u16()).ok(),
        Some(200),
        "readiness on the ops port"
    );
    // The public port answers again once the write timeout cut the hogs (it never did before).
    wait_for("the public port to answer", Duration::from_secs(30), || async {
        let live = quick.get(format!("{}/health/live", app.base)).send().await.ok()?;
        (live.status() == 200).then_some(())
    })
    .await;
    // Every hog was closed by the server: reading it reaches the end (or a reset) instead of
    // waiting for answers that no longer come.
    for mut s in hogs {
        let mut sink = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut sink)).await;
        assert!(read.is_ok(), "a connection that never read was still open after 30 s");
    }
    stop.cancel();
    app.stop().await;
}

/// One address holds at most its share of the connections; a closed one gives its place back.
#[tokio::test]
async fn one_address_holds_at_most_its_share_of_the_connections() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.server.max_connections_per_ip = 5;
    let app = App::start(&config, false).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        // Headers begun, never finished: the connection stays (until the header timeout).
        s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        held.push(s);
    }
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    // Refused at once, not kept waiting: the server closes the sixth.
    let mut sixth = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = sixth.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), sixth.read_to_end(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the sixth connection was served or kept: {read:?} {:?}",
        String::from_utf8_lossy(&buf)
    );
    drop(held.pop());
    wait_for("a freed place", Duration::from_secs(10), || async {
        let live = quick.get(format!("{}/health/live", app.base)).send().await.ok()?;
        (live.status() == 200).then_some(())
    })
    .await;
    app.stop().await;
}

/// Confinement comes first: a token confined to a user never holds an operator scope. One
/// signed before the rule read another caller's job about another user, listed schedules, ran
/// `cleanup` and opened an operator session; it now verifies nowhere, and none is issued.
#[tokio::test]
async fn a_confined_token_never_holds_admin_and_one_made_before_the_rule_verifies_nowhere() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    add_users(&db, &[1001, 1002]).await;
    let config = config(&redis, &db);
    let app = App::start(&config, false).await;
    let other = token_for("another-service", None, RW);
    let theirs = app
        .enqueue_id(
            &other,
            json!({"kind": "cashflow.project", "payload": {"user_id": 1002}}),
        )
        .await;
    let now = chrono::Utc::now().timestamp();
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "app", "user": 1001, "scope": "admin jobs:read jobs:write", "iat": now, "exp": now + 600,
                "iss": "nightshift", "aud": "nightshift-api"}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let cleanup = json!({"kind": "maintenance.cleanup", "payload": {}});
    for (method, path, body) in [
        ("GET", format!("/v1/jobs/{theirs}"), None),
        ("GET", "/v1/schedules".to_string(), None),
        ("POST", "/v1/schedules/nightly-cashflow/run".to_string(), None),
        ("POST", "/v1/jobs".to_string(), Some(cleanup)),
        ("GET", "/v1/admin/keys".to_string(), None),
        ("GET", "/v1/users/1001".to_string(), None),
    ] {
        let req = match method {
            "GET" => app.http.get(format!("{}{path}", app.base)),
            _ => app.http.post(format!("{}{path}", app.base)),
        };
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let status = req.bearer_auth(&forged).send().await.unwrap().status().as_u16();
        assert_eq!(status, 401, "{method} {path}");
    }
    let login = no_redirects()
        .post(format!("{}/dashboard/login", app.base))
        .form(&[("token", forged.as_str())])
        .send()
        .await
        .unwrap();
    assert!(
        login.headers().get("set-cookie").is_none(),
        "an operator session was made"
    );
    assert_ne!(login.status(), 303);
    // A confined token without admin reaches no schedule and no other caller's job either.
    let confined = token_for("app", Some(1002), RW);
    let status = |path: String, t: String| {
        let req = app.http.get(format!("{}{path}", app.base)).bearer_auth(t);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("/v1/schedules".into(), confined.clone()).await, 403);
    assert_eq!(status(format!("/v1/jobs/{theirs}"), confined).await, 404);
    // `token issue` refuses to make one; without admin it makes it.
    let issue = |scopes: &str| {
        Proc::spawn(
            &["token", "issue", "--sub", "app", "--user", "1001", "--scope", scopes],
            &config,
            &[],
        )
        .wait_output()
    };
    let (ok, out) = issue("admin,jobs:read,jobs:write");
    assert!(!ok && out.contains("operator scope `admin`"), "{out}");
    let (ok, out) = issue("jobs:read,emails:send");
    assert!(ok, "{out}");
    app.stop().await;
}

/// A user's deletion outlives the tokens confined to them: one issued before can neither read
/// nor recreate the id. A service token may recreate it; tokens minted after that work.
#[tokio::test]
async fn a_confined_token_issued_before_its_user_was_deleted_cannot_recreate_the_user() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let finance = [Scope::FinanceRead, Scope::FinanceWrite];
    let service = token_for("finance-app", None, &finance);
    let profile = json!({"email": "u77@example.com", "time_zone": "UTC"});
    let call = |method: &'static str, t: String, body: Option<Value>| {
        let url = format!("{}/v1/users/77", app.base);
        let req = match method {
            "PUT" => app.http.put(url),
            "DELETE" => app.http.delete(url),
            _ => app.http.get(url),
        };
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        async move { req.bearer_auth(t).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(call("PUT", service.clone(), Some(profile.clone())).await, 200);
    let before = token_for("app", Some(77), &finance);
    assert_eq!(call("GET", before.clone(), None).await, 200);
    assert_eq!(call("DELETE", service.clone(), None).await, 204);
    assert_eq!(call("PUT", before.clone(), Some(profile.clone())).await, 404);
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = 77)")
        .fetch_one(&db.pool().await)
        .await
        .unwrap();
    assert!(!exists, "the deleted user was recreated by an old confined token");
    assert_eq!(
        call("PUT", service.clone(), Some(profile)).await,
        200,
        "a service may recreate it"
    );
    assert_eq!(
        call("GET", before, None).await,
        404,
        "the old token still reaches nothing"
    );
    // A token minted once the deletion is in the past (tokens carry whole seconds) works.
    wait_for(
        "a freshly minted token to be accepted",
        Duration::from_secs(5),
        || async { (call("GET", token_for("app", Some(77), &finance), None).await == 200).then_some(()) },
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn the_log_carries_no_forged_lines_and_no_token_without_demo() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    // JSON lines, as in production: no colour codes of the logger's own to tell apart.
    let (mut api, addr) = Proc::spawn_all(&config, &[("NIGHTSHIFT_LOG_FORMAT", "json")]).await;
    let http = reqwest::Client::new();
    // A kid with a forged log line, an ANSI escape and 100 KB of padding.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let kid = format!("k\nFORGED-LINE level=ERROR\u{1b}[31m{}", "A".repeat(100_000));
    let header = b64.encode(json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string());
    let forged = format!("{header}.{}.sig", b64.encode("{}"));
    let r = http
        .get(format!("http://{addr}/v1/jobs/{}", uuid::Uuid::now_v7()))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 401 | 431), "{}", r.status());
    // A path of 60 KB (near the longest a URI may be) with an encoded line break, under a token
    // that is refused and logged.
    let path = format!("/v1/jobs/%0AFORGED-LINE{}", "A".repeat(60_000));
    let r = http
        .get(format!("http://{addr}{path}"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 401 | 404 | 414 | 431), "{}", r.status());
    // A cross-origin post to the dashboard, with a long path and origin: refused and logged.
    let r = http
        .post(format!("http://{addr}/dashboard/queues/{}", "B".repeat(20_000)))
        .header("origin", format!("https://evil.example/{}", "C".repeat(6_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A job whose error quotes 50 KB of its payload, with a line break, fails and is logged.
    let message = format!("\nFORGED-LINE {}", "D".repeat(50_000));
    let token = token(RW);
    let r = http
        .post(format!("http://{addr}/v1/jobs"))
        .bearer_auth(&token)
        .json(&json!({"kind": "diag.fail", "max_attempts": 1, "payload": {"message": message}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    wait_for("the failing job to end dead", Duration::from_secs(20), || async {
        let r = http
            .get(format!("http://{addr}/v1/jobs/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?;
        (r.json::<Value>().await.ok()?["state"] == "dead").then_some(())
    })
    .await;
    api.signal("TERM");
    let (_, log) = api.wait_output();
    assert!(log.contains("Nightshift is running"), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED-LINE")),
        "a forged line reached the log"
    );
    assert!(
        !log.contains('\u{1b}') && !log.contains("\\u001b[31m"),
        "an escape sequence reached the log"
    );
    assert!(log.contains("cross-origin request refused"), "{log}");
    assert!(log.contains("job failed"), "{log}");
    assert!(
        log.contains("token rejected"),
        "the rejection is logged, escaped: {log}"
    );
    assert!(
        log.lines().all(|l| l.len() < 4_000),
        "an unbounded line reached the log"
    );
    // A JWT's header always starts with `eyJ` (base64 of `{"`).
    assert!(!log.contains("eyJ"), "a token was printed without --demo");
}

/// The table: every row a hostile request, with the status it must get.
#[tokio::test]
async fn a_table_of_hostile_requests_gets_its_statuses_and_changes_nothing() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    add_users(&db, &[1, 2]).await;
    // User 1's one-off transaction 1, which user 2's token must not reach under user 2.
    sqlx::query(
        "INSERT INTO scheduled_transactions (id, user_id, name, amount, date) VALUES (1, 1, 'x', -1, '2027-01-01')",
    )
    .execute(&db.pool().await)
    .await
    .unwrap();
    let mut config = config(&redis, &db);
    config.diagnostics = false;
    let app = App::start(&config, false).await;
    let client = token(RW);
    let read_only = token(&[Scope::JobsRead]);
    let confined = token_for("app", Some(2), &Scope::ALL[..5]);
    let confined_finance = token_for(
        "app",
        Some(2),
        &[
            Scope::FinanceRead,
            Scope::FinanceWrite,
            Scope::JobsRead,
            Scope::JobsWrite,
        ],
    );
    let other_secret = nightshift_common::auth::TokenKeys::from_secret(&secrecy::SecretString::from("o".repeat(48)))
        .issue("test-client", &Scope::ALL, Duration::from_secs(60))
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let forged_subject = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "svc\u{202e}nimda", "scope": "jobs:write", "iat": now, "exp": now + 600,
                "iss": "nightshift", "aud": "nightshift-api"}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let long_key = "k".repeat(256);
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let deep_body = format!(r#"{{"kind":"cashflow.project","payload":{deep}}}"#);
    let huge = format!(
        r#"{{"kind":"cashflow.project","payload":{{"user_id":1,"pad":"{}"}}}}"#,
        "x".repeat(70_000)
    );
    type Row = (
        &'static str,
        &'static str,
        String,
        Option<String>,
        Vec<(&'static str, String)>,
        u16,
    );
    let j = |v: Value| Some(v.to_string());
    let bearer = |t: &str| vec![("authorization", format!("Bearer {t}"))];
    let with = |t: &str, k: &'static str, v: String| vec![("authorization", format!("Bearer {t}")), (k, v)];
    let project = json!({"kind": "cashflow.project", "payload": {"user_id": 1}});
    let rows: Vec<Row> = vec![
        // Tokens.
        ("no token", "POST", "/v1/jobs".into(), j(project.clone()), vec![], 401),
        (
            "empty bearer",
            "POST",
            "/v1/jobs".into(),
            j(project.clone()),
            vec![("authorization", "Bearer ".into())],
            401,
        ),
        (
            "basic scheme",
            "POST",
            "/v1/jobs".into(),
            j(project.clone()),
            vec![("authorization", format!("Basic {client}"))],
            401,
        ),
        (
            "another secret",
            "POST",
            "/v1/jobs".into(),
            j(project.clone()),
            bearer(&other_secret),
            401,
        ),
        (
            "garbage token",
            "POST",
            "/v1/jobs".into(),
            j(project.clone()),
            bearer("a.b.c"),
            401,
        ),
        (
            "token with a newline",
            "POST",
            "/v1/jobs".into(),
            j(project.clone()),
            bearer("x\ty"),
            401,
        ),
        (
            "read-only enqueues",
            "POST",
            "/v1/jobs".into(),
            j(project.clone()),
            bearer(&read_only),
            403,
        ),
        (
            "client reads keys",
            "GET",
            "/v1/admin/keys".into(),
            None,
            bearer(&client),
            403,
        ),
        (
            "client rotates keys",
            "POST",
            "/v1/admin/keys/rotate".into(),
            None,
            bearer(&client),
            403,
        ),
        (
            "client pauses a schedule",
            "POST",
            "/v1/schedules/reminder-scan/pause".into(),
            None,
            bearer(&client),
            403,
        ),
        (
            "client runs a schedule",
            "POST",
            "/v1/schedules/nightly-cashflow/run".into(),
            None,
            bearer(&client),
            403,
        ),
        // Kinds.
        (
            "secrets.rotate",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "secrets.rotate", "payload": {"force": true}})),
            bearer(&client),
            403,
        ),
        (
            "maintenance.cleanup",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "maintenance.cleanup", "payload": {"retention_days": 1}})),
            bearer(&client),
            403,
        ),
        (
            "backup.run",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "backup.run"})),
            bearer(&client),
            403,
        ),
        (
            "backup.verify",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "backup.verify"})),
            bearer(&client),
            403,
        ),
        (
            "cashflow.nightly",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "cashflow.nightly"})),
            bearer(&client),
            403,
        ),
        (
            "reminder.scan",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "reminder.scan", "payload": {"lookback_hours": 336}})),
            bearer(&client),
            403,
        ),
        (
            "email.send",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "email.send", "payload": {"key": "api:other:k"}})),
            bearer(&client),
            403,
        ),
        (
            "reminder.notify",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "reminder.notify"})),
            bearer(&client),
            403,
        ),
        (
            "webhook.send",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "webhook.send"})),
            bearer(&client),
            403,
        ),
        (
            "diag.abort, diagnostics off",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "diag.abort"})),
            bearer(&client),
            422,
        ),
        (
            "noop, diagnostics off",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "noop"})),
            bearer(&client),
            422,
        ),
        (
            "unknown kind",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "rm -rf"})),
            bearer(&client),
            422,
        ),
        (
            "kind with NUL",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "noop\u{0}"})),
            bearer(&client),
            422,
        ),
        (
            "kind as a number",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": 7})),
            bearer(&client),
            422,
        ),
        (
            "kind with a newline",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "x\nFORGED"})),
            bearer(&client),
            422,
        ),
        (
            "confined token, kind for no user",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "maintenance.cleanup"})),
            bearer(&confined),
            403,
        ),
        // Bodies.
        (
            "trailing bytes",
            "POST",
            "/v1/jobs".into(),
            Some(format!("{project}x")),
            bearer(&client),
            400,
        ),
        (
            "two values",
            "POST",
            "/v1/jobs".into(),
            Some(format!("{project}{project}")),
            bearer(&client),
            400,
        ),
        (
            "not JSON",
            "POST",
            "/v1/jobs".into(),
            Some("kind=noop".into()),
            bearer(&client),
            400,
        ),
        (
            "empty body",
            "POST",
            "/v1/jobs".into(),
            Some(String::new()),
            bearer(&client),
            400,
        ),
        (
            "unknown field",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "cashflow.project", "payload": {"user_id": 1}, "admin": true})),
            bearer(&client),
            422,
        ),
        (
            "payload NUL",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "cashflow.project", "payload": {"user_id": 1, "x": "\u{0}"}})),
            bearer(&client),
            422,
        ),
        (
            "payload key NUL",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "cashflow.project", "payload": {"\u{0}": 1}})),
            bearer(&client),
            422,
        ),
        (
            "payload wrong type",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "cashflow.project", "payload": {"user_id": "1; DROP TABLE users"}})),
            bearer(&client),
            422,
        ),
        (
            "date past the calendar the engine holds",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "cashflow.project", "payload": {"user_id": 1, "as_of": "+262142-12-31"}})),
            bearer(&client),
            422,
        ),
        (
            "refresh date out of range",
            "POST",
            "/v1/users/1/cashflow/refresh".into(),
            j(json!({"as_of": "0001-01-01"})),
            bearer(&client),
            422,
        ),
        (
            "negative delay",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "cashflow.project", "payload": {"user_id": 1}, "delay_secs": -1})),
            bearer(&client),
            422,
        ),
        (
            "delay past a year",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "cashflow.project", "payload": {"user_id": 1}, "delay_secs": 99_999_999})),
            bearer(&client),
            422,
        ),
        (
            "zero attempts",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "cashflow.project", "payload": {"user_id": 1}, "max_attempts": 0})),
            bearer(&client),
            422,
        ),
        (
            "attempts overflow",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "cashflow.project", "payload": {"user_id": 1}, "max_attempts": 4_294_967_296u64})),
            bearer(&client),
            422,
        ),
        (
            "deep nesting",
            "POST",
            "/v1/jobs".into(),
            Some(deep_body),
            bearer(&client),
            400,
        ),
        (
            "body over 64 KiB",
            "POST",
            "/v1/jobs".into(),
            Some(huge),
            bearer(&client),
            413,
        ),
        (
            "reminder with trailing bytes",
            "POST",
            "/v1/users/1/reminders".into(),
            Some(r#"{"title":"t","amount":-1,"due_date":"2027-01-01"}]"#.into()),
            bearer(&token(&Scope::ALL)),
            400,
        ),
        (
            "e-mail with NUL",
            "POST",
            "/v1/emails".into(),
            j(
                json!({"template": "password_reset", "to": "a@example.com", "vars": {"name": "\u{0}", "reset_url": "https://x"}}),
            ),
            bearer(&token(&Scope::ALL)),
            422,
        ),
        (
            "e-mail header injection",
            "POST",
            "/v1/emails".into(),
            j(
                json!({"template": "password_reset", "to": "a@example.com\r\nBcc: all@example.com", "vars": {"name": "n", "reset_url": "https://x"}}),
            ),
            bearer(&token(&Scope::ALL)),
            422,
        ),
        (
            "e-mail unknown template",
            "POST",
            "/v1/emails".into(),
            j(json!({"template": "../../etc/passwd", "to": "a@example.com"})),
            bearer(&token(&Scope::ALL)),
            422,
        ),
        (
            "webhook to a file URL",
            "POST",
            "/v1/users/1/webhooks".into(),
            j(json!({"url": "file:///etc/passwd"})),
            bearer(&token(&Scope::ALL)),
            422,
        ),
        // Headers.
        (
            "idempotency key too long",
            "POST",
            "/v1/jobs".into(),
            j(project.clone()),
            with(&client, "idempotency-key", long_key),
            422,
        ),
        (
            "idempotency key with spaces",
            "POST",
            "/v1/jobs".into(),
            j(project.clone()),
            with(&client, "idempotency-key", "a b".into()),
            422,
        ),
        (
            "idempotency key with a tab",
            "POST",
            "/v1/jobs".into(),
            j(project.clone()),
            with(&client, "idempotency-key", "k\tey".into()),
            422,
        ),
        (
            "wrong content type",
            "POST",
            "/v1/jobs".into(),
            j(project.clone()),
            with(&client, "content-type", "text/plain".into()),
            202,
        ),
        // Paths and users.
        (
            "job id not a UUID",
            "GET",
            "/v1/jobs/..%2F..%2Fetc".into(),
            None,
            bearer(&client),
            422,
        ),
        (
            "someone else's job",
            "GET",
            format!("/v1/jobs/{}", uuid::Uuid::now_v7()),
            None,
            bearer(&client),
            404,
        ),
        (
            "user id zero",
            "GET",
            "/v1/users/0/cashflow".into(),
            None,
            bearer(&client),
            422,
        ),
        (
            "user id negative",
            "GET",
            "/v1/users/-1/cashflow".into(),
            None,
            bearer(&client),
            422,
        ),
        (
            "user id overflow",
            "GET",
            "/v1/users/99999999999999999999/cashflow".into(),
            None,
            bearer(&client),
            422,
        ),
        (
            "user id SQL",
            "GET",
            "/v1/users/1%20OR%201=1/cashflow".into(),
            None,
            bearer(&client),
            422,
        ),
        (
            "unknown user",
            "GET",
            "/v1/users/424242/webhooks".into(),
            None,
            bearer(&token(&Scope::ALL)),
            404,
        ),
        (
            "confined: other user's cashflow",
            "GET",
            "/v1/users/1/cashflow".into(),
            None,
            bearer(&confined),
            404,
        ),
        (
            "confined: other user's webhooks",
            "GET",
            "/v1/users/1/webhooks".into(),
            None,
            bearer(&confined),
            404,
        ),
        (
            "confined: other user's reminders",
            "GET",
            "/v1/users/1/reminders".into(),
            None,
            bearer(&confined),
            404,
        ),
        (
            "confined: create a reminder for another",
            "POST",
            "/v1/users/1/reminders".into(),
            j(json!({"title": "t", "amount": -1, "due_date": "2027-01-01"})),
            bearer(&confined),
            404,
        ),
        (
            "confined: rotate another's webhook",
            "POST",
            "/v1/users/1/webhooks/1/rotate".into(),
            None,
            bearer(&confined),
            404,
        ),
        (
            "confined: delete another's webhook",
            "DELETE",
            "/v1/users/1/webhooks/1".into(),
            None,
            bearer(&confined),
            404,
        ),
        (
            "confined: refresh another's cashflow",
            "POST",
            "/v1/users/1/cashflow/refresh".into(),
            None,
            bearer(&confined),
            404,
        ),
        (
            "confined: project another user",
            "POST",
            "/v1/jobs".into(),
            j(project.clone()),
            bearer(&confined),
            404,
        ),
        (
            "confined: another user's accounts",
            "GET",
            "/v1/users/1/accounts".into(),
            None,
            bearer(&confined_finance),
            404,
        ),
        (
            "confined: replace another user's recurring item",
            "PUT",
            "/v1/users/1/recurring/1".into(),
            j(json!({"name": "rent", "amount": -1, "cadence": "monthly", "anchor_date": "2027-01-01"})),
            bearer(&confined_finance),
            404,
        ),
        (
            "confined: delete another user",
            "DELETE",
            "/v1/users/1".into(),
            None,
            bearer(&confined_finance),
            404,
        ),
        (
            "confined: another user's item under its own user",
            "DELETE",
            "/v1/users/2/scheduled/1".into(),
            None,
            bearer(&confined_finance),
            404,
        ),
        (
            "finance item id not a number",
            "GET",
            "/v1/users/1/accounts/1e3".into(),
            None,
            bearer(&token(&Scope::ALL)),
            422,
        ),
        (
            "an account with an id of its own",
            "POST",
            "/v1/users/1/accounts".into(),
            j(json!({"id": 7, "name": "main", "balance": 1})),
            bearer(&token(&Scope::ALL)),
            422,
        ),
        (
            "e-mail key with a NUL",
            "GET",
            "/v1/emails/a%00b".into(),
            None,
            bearer(&token(&Scope::ALL)),
            422,
        ),
        (
            "unknown route",
            "GET",
            "/v1/../admin".into(),
            None,
            bearer(&client),
            404,
        ),
        ("metrics on the API port", "GET", "/metrics".into(), None, vec![], 404),
        // The batch route: whole-request refusals store nothing.
        (
            "batch without a token",
            "POST",
            "/v1/jobs/batch".into(),
            j(json!({"jobs": [project.clone()]})),
            vec![],
            401,
        ),
        (
            "batch with a read-only token",
            "POST",
            "/v1/jobs/batch".into(),
            j(json!({"jobs": [project.clone()]})),
            bearer(&token(&[Scope::JobsRead])),
            403,
        ),
        (
            "batch of 1,001 jobs",
            "POST",
            "/v1/jobs/batch".into(),
            j(json!({"jobs": vec![project.clone(); 1001]})),
            bearer(&client),
            422,
        ),
        (
            "batch whose jobs are not a list",
            "POST",
            "/v1/jobs/batch".into(),
            j(json!({"jobs": {"0": project.clone()}})),
            bearer(&client),
            422,
        ),
        (
            "batch with an unknown top-level field",
            "POST",
            "/v1/jobs/batch".into(),
            j(json!({"jobs": [project.clone()], "priority": 1})),
            bearer(&client),
            422,
        ),
        (
            "dashboard under another host",
            "GET",
            "/dashboard/login".into(),
            None,
            vec![("host", "evil.example".into())],
            421,
        ),
        (
            "dashboard action without a session",
            "POST",
            "/dashboard/queues/default/pause".into(),
            Some("csrf=x".into()),
            vec![("content-type", "application/x-www-form-urlencoded".into())],
            303,
        ),
        (
            "dashboard cross-site post",
            "POST",
            "/dashboard/login".into(),
            Some("token=x".into()),
            vec![
                ("content-type", "application/x-www-form-urlencoded".into()),
                ("origin", "https://evil.example".into()),
            ],
            403,
        ),
        // Unicode format characters (zero-width, bidirectional overrides) in keys and subjects.
        (
            "group with a bidi isolate",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "cashflow.project", "payload": {"user_id": 1}, "group": "a\u{2066}b"})),
            bearer(&client),
            422,
        ),
        (
            "dedupe key with a zero-width space",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "cashflow.project", "payload": {"user_id": 1},
                     "dedupe": {"key": "k\u{200b}", "mode": "pending"}})),
            bearer(&client),
            422,
        ),
        (
            "e-mail key with a byte-order mark",
            "POST",
            "/v1/emails".into(),
            j(
                json!({"template": "password_reset", "to": "a@example.com", "idempotency_key": "\u{feff}k",
                     "vars": {"name": "n", "reset_url": "https://x", "expires_minutes": 5}}),
            ),
            bearer(&token(&Scope::ALL)),
            422,
        ),
        (
            "subject with a right-to-left override",
            "POST",
            "/v1/jobs".into(),
            j(project.clone()),
            bearer(&forged_subject),
            401,
        ),
        (
            "client concurrency key on a kind with its own",
            "POST",
            "/v1/jobs".into(),
            j(json!({"kind": "cashflow.project", "payload": {"user_id": 1}, "concurrency_key": "mine"})),
            bearer(&client),
            422,
        ),
        (
            "confined token e-mails another address",
            "POST",
            "/v1/emails".into(),
            j(json!({"template": "password_reset", "to": "u1@example.com",
                     "vars": {"name": "n", "reset_url": "https://x", "expires_minutes": 5}})),
            bearer(&confined),
            404,
        ),
    ];
    assert!(rows.len() >= 60, "{} rows", rows.len());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut accepted = 0;
    for (what, method, path, body, headers, status) in rows {
        let mut req = http.request(method.parse().unwrap(), format!("{}{path}", app.base));
        let mut typed = false;
        for (k, v) in headers {
            typed |= k == "content-type";
            req = req.header(k, v);
        }
        if let Some(b) = body {
            if !typed {
                req = req.header("content-type", "application/json");
            }
            req = req.body(b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let got = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(got, status, "{what}: {text}");
        if got < 300 {
            accepted += 1;
        }
    }
    // Only the control row was accepted: nothing else reached Redis or the history.
    assert_eq!(jobs_in_redis(&redis).await, accepted);
    assert_eq!(history_rows(&db).await, accepted as i64);
    let live = http.get(format!("{}/health/live", app.base)).send().await.unwrap();
    assert_eq!(live.status(), 200);
    app.stop().await;
    // The history writer still advances, on the same database, with diagnostics on.
    let app = App::start(&crate::support::config(&redis, &db), true).await;
    history_advances(&app, &db).await;
    app.stop().await;
}

//! The table: every row a hostile request, with the status it must get; each new input joins it.
use super::*;

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

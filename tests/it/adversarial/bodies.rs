//! Hostile bodies and text: trailing bytes and NUL characters refused before anything is
//! pushed, and no forged line or token in the log.
use super::*;

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

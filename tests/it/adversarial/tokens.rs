//! Tokens, scopes and confinement: which kinds a token may enqueue, what a user-confined token
//! sees, key namespaces, lock-outs, sessions, deleted users, and where metrics and the
//! dashboard answer.
use super::*;

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

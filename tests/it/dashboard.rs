//! The operators' dashboard in a real browser: Debian's headless chromium, driven over
//! WebDriver (chromedriver), against the API and workers on a private Redis and database.
//! Screenshots of the main pages land in `target/dashboard-screenshots/`.
use nightshift_common::auth::Scope;
use serde_json::{Value, json};

use crate::support::{
    browser::{WAIT, setup},
    *,
};

async fn audit_actions(db: &sqlx::PgPool, target: &str) -> Vec<(String, String, Value)> {
    sqlx::query_as("SELECT actor, action, detail FROM audit_log WHERE target = $1 ORDER BY id")
        .bind(target)
        .fetch_all(db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_loads_without_console_errors_and_a_non_admin_token_is_refused() {
    let s = setup().await;
    let base = &s.app.base;
    let admin = token(&Scope::ALL);
    let failed = s
        .app
        .enqueue_id(&admin, json!({ "kind": "diag.fail", "payload": {}, "max_attempts": 1 }))
        .await;
    s.app.wait_state(&admin, &failed, "dead", WAIT).await;
    let pages = [
        ("overview", "/dashboard".to_string()),
        ("jobs", "/dashboard/jobs".to_string()),
        ("job", format!("/dashboard/jobs/{failed}")),
        ("queue-dead", "/dashboard/queues/default?state=dead".to_string()),
        ("confirm-retry-all", "/dashboard/queues/default/dead/retry".to_string()),
        ("workers", "/dashboard/workers".to_string()),
        ("schedules", "/dashboard/schedules".to_string()),
        ("backups", "/dashboard/backups".to_string()),
        ("batches", "/dashboard/batches".to_string()),
        ("keys", "/dashboard/keys".to_string()),
    ];
    for (name, path) in &pages {
        s.browser.goto(&format!("{base}{path}")).await;
        // The page rendered (not an error page) and, on the overview, its script ran once.
        assert!(!s.browser.text("main h1").await.is_empty(), "{path}");
        assert!(
            s.browser.find("#error-message").await.is_err(),
            "{path} is an error page"
        );
        match *name {
            // The script drew the charts, and this process's workers sent heartbeats.
            "overview" => drop(s.browser.element("#chart-throughput rect").await),
            "workers" => assert!(
                s.browser
                    .text("#workers tbody")
                    .await
                    .contains(&std::process::id().to_string())
            ),
            _ => {}
        }
        s.browser.screenshot(name).await;
        let errors: Vec<_> = s
            .browser
            .console()
            .await
            .into_iter()
            .filter(|(level, _)| level == "SEVERE" || level == "WARNING")
            .collect();
        assert!(errors.is_empty(), "{path} logged {errors:?}");
    }

    // Signed out, the dashboard sends the browser to the login page; a token without `admin`
    // does not get in.
    s.browser.click(".signout button").await;
    assert_eq!(
        s.browser.text_until("main h1", |t| t == "Nightshift").await,
        "Nightshift"
    );
    s.browser.goto(&format!("{base}/dashboard/jobs")).await;
    assert!(s.browser.url().await.ends_with("/dashboard/login"));
    s.browser.sign_in(base, &[Scope::JobsRead, Scope::JobsWrite]).await;
    assert!(s.browser.text("#login-error").await.contains("admin scope"));
    s.browser.screenshot("login-refused").await;
    let logins = audit_actions(&s.db, "dashboard").await;
    let outcomes: Vec<(&str, &str, &str)> = logins
        .iter()
        .map(|(actor, action, d)| (actor.as_str(), action.as_str(), d["outcome"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("dashboard:test-client", "dashboard.login", "ok"),
            ("dashboard:test-client", "dashboard.logout", "ok"),
            ("anonymous", "dashboard.login", "refused"),
        ]
    );
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_counts_change_as_jobs_run_without_reloading_the_page() {
    let s = setup().await;
    let admin = token(&Scope::ALL);
    let before: u64 = s
        .browser
        .text("[data-count='default/succeeded_total']")
        .await
        .parse()
        .unwrap();
    // A mark on this page's window: a reload would lose it.
    s.browser.execute("window.stillHere = true;").await;
    let ids: Vec<String> = futures::future::join_all((0..3).map(|_| {
        s.app
            .enqueue_id(&admin, json!({ "kind": "diag.sleep", "payload": { "ms": 4000 } }))
    }))
    .await;
    // Running jobs show up, then their successes, in the cells the page's script updates.
    wait_for("running jobs on the overview", WAIT, || async {
        let n: u64 = s.browser.text("[data-count='default/running']").await.parse().ok()?;
        (n >= 1).then_some(())
    })
    .await;
    s.browser.screenshot("overview-running").await;
    wait_for("three more successes on the overview", WAIT, || async {
        let n: u64 = s
            .browser
            .text("[data-count='default/succeeded_total']")
            .await
            .parse()
            .ok()?;
        (n >= before + 3).then_some(())
    })
    .await;
    for id in &ids {
        s.app.wait_state(&admin, id, "succeeded", WAIT).await;
    }
    let same_page = s.browser.execute("return window.stillHere === true;").await;
    assert_eq!(same_page, json!(true), "the counts changed without a reload");
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_opens_a_dead_job_retries_it_and_sees_it_succeed() {
    let s = setup().await;
    let base = &s.app.base;
    let admin = token(&Scope::ALL);
    let id = s
        .app
        .enqueue_id(
            &admin,
            json!({ "kind": "diag.fail", "max_attempts": 1,
                    "payload": { "message": "upstream said no", "succeed_from_attempt": 2, "token": "tok-5ecret-value" } }),
        )
        .await;
    s.app.wait_state(&admin, &id, "dead", WAIT).await;
    s.browser
        .goto(&format!("{base}/dashboard/queues/default?state=dead"))
        .await;
    s.browser
        .click(&format!("#queue-jobs a[href='/dashboard/jobs/{id}']"))
        .await;
    assert_eq!(s.browser.text("#job-state").await, "dead");
    assert!(
        s.browser
            .text("#job-error")
            .await
            .contains("upstream said no (attempt 1)")
    );
    // The kind marks `token` sensitive: the page never carries its value.
    let payload = s.browser.text("#job-payload").await;
    assert!(
        payload.contains("upstream said no") && payload.contains("••••••"),
        "{payload}"
    );
    assert!(!s.browser.source().await.contains("tok-5ecret-value"));
    s.browser.screenshot("job-dead").await;

    s.browser.click("#action-retry").await;
    assert!(s.browser.text(".flash").await.starts_with("Retried"));
    let state = s.browser.reload_until("#job-state", |t| t == "succeeded").await;
    assert_eq!(state, "succeeded");
    s.browser.screenshot("job-retried").await;
    let status = s.app.wait_state(&admin, &id, "succeeded", WAIT).await;
    assert_eq!(status["attempts"], 2);
    let audit = audit_actions(&s.db, &id).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (audit[0].0.as_str(), audit[0].1.as_str()),
        ("dashboard:test-client", "job.retry")
    );
    assert_eq!(audit[0].2["outcome"], "ok");
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_paused_from_the_dashboard_starts_no_job_until_resumed() {
    let s = setup().await;
    let base = &s.app.base;
    let admin = token(&Scope::ALL);
    s.browser.goto(&format!("{base}/dashboard/queues/cashflow")).await;
    s.browser.click("#queue-toggle").await;
    assert_eq!(s.browser.text_until("#queue-state", |t| t == "paused").await, "paused");
    let held = s
        .app
        .enqueue_id(
            &admin,
            json!({ "kind": "cashflow.project", "payload": { "user_id": 424242 } }),
        )
        .await;
    // A job on another queue runs to the end: the workers are polling, and still the paused
    // queue's job has not started.
    let control = s.app.enqueue_id(&admin, json!({ "kind": "noop", "payload": {} })).await;
    s.app.wait_state(&admin, &control, "succeeded", WAIT).await;
    let status: Value = s.app.status(&admin, &held).await.json().await.unwrap();
    assert_eq!(status["state"], "queued", "{status}");
    assert_eq!(status["attempts"], 0);
    s.browser.screenshot("queue-paused").await;

    s.browser.click("#queue-toggle").await;
    assert_eq!(s.browser.text_until("#queue-state", |t| t == "active").await, "active");
    // Resumed, the job runs (and ends dead: that user does not exist).
    let done = s.app.wait_state(&admin, &held, "dead", WAIT).await;
    assert!(
        done["error"].as_str().unwrap().contains("user 424242 not found"),
        "{done}"
    );
    let audit: Vec<String> = audit_actions(&s.db, "cashflow")
        .await
        .into_iter()
        .map(|a| a.1)
        .collect();
    assert_eq!(audit, ["queue.pause", "queue.resume"]);
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_job_arguments_and_errors_is_shown_as_text_and_never_runs() {
    let s = setup().await;
    let base = &s.app.base;
    let admin = token(&Scope::ALL);
    let attack = r#"<script>window.__ran=true;alert(1)</script><img src=x onerror="window.__ran=true;alert(2)">"#;
    let id = s
        .app
        .enqueue_id(
            &admin,
            json!({ "kind": "diag.fail", "max_attempts": 1, "payload": { "message": attack } }),
        )
        .await;
    s.app.wait_state(&admin, &id, "dead", WAIT).await;
    for path in [
        format!("/dashboard/jobs/{id}"),
        "/dashboard/jobs?state=dead".to_string(),
        "/dashboard/queues/default?state=dead".to_string(),
    ] {
        s.browser.goto(&format!("{base}{path}")).await;
        s.browser.text("main h1").await;
        assert_eq!(s.browser.alert().await, None, "{path} opened an alert");
        let injected = s
            .browser
            .execute("return [document.querySelectorAll('main script, main img').length, window.__ran === true];")
            .await;
        assert_eq!(injected, json!([0, false]), "{path} has injected elements");
        assert!(
            s.browser
                .text("main")
                .await
                .contains("<script>window.__ran=true;alert(1)</script>"),
            "{path} shows the text"
        );
    }
    s.browser.goto(&format!("{base}/dashboard/jobs/{id}")).await;
    // The payload is shown as JSON: the same markup, its quotes escaped.
    assert!(
        s.browser
            .text("#job-payload")
            .await
            .contains(&serde_json::to_string(attack).unwrap())
    );
    assert!(s.browser.text("#job-error").await.contains(attack));
    s.browser.screenshot("job-xss-as-text").await;
    // A job's priority and dedupe key are on its page, the key (a client's text) as text.
    let keyed = s
        .app
        .enqueue_id(
            &admin,
            json!({ "kind": "diag.fail", "max_attempts": 1, "payload": {}, "priority": 2,
                    "dedupe": { "key": attack, "mode": "pending" } }),
        )
        .await;
    s.app.wait_state(&admin, &keyed, "dead", WAIT).await;
    s.browser.goto(&format!("{base}/dashboard/jobs/{keyed}")).await;
    let facts = s.browser.text("main dl.facts").await;
    assert!(facts.contains("Priority\n2") || facts.contains("Priority 2"), "{facts}");
    assert!(facts.contains(attack), "{facts}");
    let injected = s
        .browser
        .execute("return [document.querySelectorAll('main script, main img').length, window.__ran === true];")
        .await;
    assert_eq!(injected, json!([0, false]));
    s.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_origin_form_post_and_a_post_without_the_csrf_token_are_refused() {
    let s = setup().await;
    let base = s.app.base.clone();
    // The attacker's page: another origin (localhost, not 127.0.0.1) whose form posts to the
    // dashboard as soon as it loads.
    let attacker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let attacker_url = format!("http://localhost:{}/", attacker.local_addr().unwrap().port());
    let page = format!(
        r#"<!doctype html><html><body><form id="f" method="post" action="{base}/dashboard/queues/default/pause">
        <input type="hidden" name="csrf" value="guessed"></form><script>document.getElementById("f").submit();</script></body></html>"#
    );
    let server = tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(move || async move { axum::response::Html(page) }),
        );
        axum::serve(attacker, app).await.unwrap();
    });
    s.browser.goto(&attacker_url).await;
    wait_for("the forged post to reach the dashboard", WAIT, || async {
        let url = s.browser.get("/url").await.ok()?;
        url.as_str()?.starts_with(&base).then_some(())
    })
    .await;
    s.browser.screenshot("cross-origin-refused").await;
    let queue = nightshift_queue::Queue::with_connection(
        nightshift_queue::connect_redis(&s.redis.url()).await.unwrap(),
        "default",
        queue_config(),
    );
    assert!(
        !queue.counts().await.unwrap().paused,
        "a cross-origin post paused the queue"
    );
    let refused = audit_actions(&s.db, "/dashboard/queues/default/pause").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].1, "dashboard.refused");
    assert_eq!(refused[0].2["reason"], "cross-origin");

    // With the operator's own session cookie but no CSRF token (a client that sends no Origin):
    // refused too, and audited under the operator.
    let cookie = s.browser.session_cookie().await;
    let resp = reqwest::Client::new()
        .post(format!("{base}/dashboard/queues/default/pause"))
        .header("cookie", format!("nightshift_session={cookie}"))
        .form(&[("csrf", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(!queue.counts().await.unwrap().paused);
    let audit = audit_actions(&s.db, "default").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (audit[0].1.as_str(), audit[0].2["outcome"].as_str()),
        ("queue.pause", Some("refused"))
    );
    // The same request with the session's token goes through: the refusal was the token's.
    s.browser.goto(&format!("{base}/dashboard/queues/default")).await;
    let csrf = s.browser.attr("input[name=csrf]", "value").await.unwrap();
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{base}/dashboard/queues/default/pause"))
        .header("cookie", format!("nightshift_session={cookie}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(queue.counts().await.unwrap().paused);
    server.abort();
    s.app.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_share_the_per_address_budget_of_failed_api_tokens() {
    let redis = PrivateRedis::start();
    let test_db = TestDb::create().await;
    let mut config = config(&redis, &test_db);
    config.api_limits.auth_failures = (60, 3);
    let app = App::start(&config, false).await;
    let login = || async {
        app.http
            .post(format!("{}/dashboard/login", app.base))
            .form(&[("token", "not-a-token")])
            .send()
            .await
            .unwrap()
            .status()
    };
    for _ in 0..3 {
        assert_eq!(login().await, 401);
    }
    assert_eq!(login().await, 429);
    // The API's failed tokens and the dashboard's failed sign-ins are one budget.
    let api = app.status("not-a-token", &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(api.status(), 429);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_all_of_the_dead_set_asks_for_confirmation_then_retries_each_once() {
    let s = setup().await;
    let base = &s.app.base;
    let admin = token(&Scope::ALL);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let body = json!({ "kind": "diag.fail", "max_attempts": 1, "payload": { "succeed_from_attempt": 2 } });
        ids.push(s.app.enqueue_id(&admin, body).await);
    }
    for id in &ids {
        s.app.wait_state(&admin, id, "dead", WAIT).await;
    }
    s.browser
        .goto(&format!("{base}/dashboard/queues/default?state=dead"))
        .await;
    s.browser.click("#bulk-retry").await;
    // The confirmation names the count and changes nothing by itself.
    assert_eq!(s.browser.text("#confirm-count").await, "3");
    for id in &ids {
        let status: Value = s.app.status(&admin, id).await.json().await.unwrap();
        assert_eq!(status["state"], "dead");
    }
    s.browser.screenshot("confirm-bulk-retry").await;
    s.browser.click("#confirm").await;
    assert!(s.browser.text(".flash").await.starts_with("Done"));
    for id in &ids {
        let status = s.app.wait_state(&admin, id, "succeeded", WAIT).await;
        assert_eq!(status["attempts"], 2, "{status}");
    }
    let audit = audit_actions(&s.db, "default/dead").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (audit[0].1.as_str(), &audit[0].2["outcome"]),
        ("dead.retry_all", &json!("ok"))
    );
    s.app.stop().await;
}

#[tokio::test]
async fn bad_page_parameters_get_a_page_naming_the_field_not_a_crash() {
    let redis = PrivateRedis::start();
    let test_db = TestDb::create().await;
    let app = App::start(&config(&redis, &test_db), false).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = http
        .post(format!("{}/dashboard/login", app.base))
        .form(&[("token", token(&[Scope::Admin]))])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = |path: &'static str| {
        let (http, cookie, base) = (&http, &cookie, &app.base);
        async move {
            let r = http
                .get(format!("{base}{path}"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // An offset past the end of any list is an empty page, not an overflow.
    let (status, body) = page("/dashboard/queues/default?state=dead&offset=18446744073709551615").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("No dead job."));
    for (path, field) in [
        ("/dashboard/jobs?from=yesterday", "from:"),
        ("/dashboard/jobs?before=not-an-id", "before:"),
        ("/dashboard/jobs?q=no-equals-sign", "q:"),
        ("/dashboard/queues/default?state=finished", "state:"),
    ] {
        let (status, body) = page(path).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert!(body.contains(field), "{path}: {body}");
    }
    let (status, _) = page("/dashboard/queues/nope").await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// Reads a number from the page, as the script returns it, until `done` (the page is loaded
/// once: what changes, its own script changed): every distinct value seen.
async fn watch(s: &browser::Setup, script: &str, done: impl Fn(&[i64]) -> bool) -> Vec<i64> {
    let seen: std::sync::Mutex<Vec<i64>> = Default::default();
    wait_for("the bar to move", WAIT, || async {
        let value = s.browser.execute(script).await;
        let mut seen = seen.lock().unwrap();
        if let Some(v) = value.as_i64()
            && seen.last() != Some(&v)
        {
            seen.push(v);
        }
        done(&seen).then_some(())
    })
    .await;
    let seen = seen.into_inner().unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "the bar only moves forward: {seen:?}"
    );
    seen
}

/// A running job's progress bar, in the browser: it moves as the job reports, without a reload,
/// and the state turns to succeeded at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_jobs_progress_bar_moves_in_the_browser() {
    let s = setup().await;
    let admin = token(&Scope::ALL);
    let id = s
        .app
        .enqueue_id(&admin, json!({ "kind": "diag.sleep", "payload": {"ms": 4000} }))
        .await;
    s.browser.goto(&format!("{}/dashboard/jobs/{id}", s.app.base)).await;
    let seen = watch(
        &s,
        "const p = document.getElementById('job-progress'); return p ? Number(p.value) : null;",
        |seen| seen.len() >= 3,
    )
    .await;
    assert!(seen.len() >= 3, "{seen:?}");
    s.browser.screenshot("job-progress").await;
    s.app.wait_state(&admin, &id, "succeeded", WAIT).await;
    s.browser.text_until("#job-state", |t| t == "succeeded").await;
    s.app.stop().await;
}

/// A batch's bar on the batches page fills as its jobs finish, without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batchs_progress_bar_fills_in_the_browser() {
    let s = setup().await;
    let admin = token(&Scope::ALL);
    let jobs: Vec<Value> = [500, 2500, 4500]
        .iter()
        .map(|ms| json!({"kind": "diag.sleep", "payload": {"ms": ms}}))
        .collect();
    let created: Value = s
        .app
        .http
        .post(format!("{}/v1/batches", s.app.base))
        .bearer_auth(&admin)
        .json(&json!({"jobs": jobs, "description": "three sleepers"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let batch = created["id"].as_str().unwrap().to_string();
    s.browser.goto(&format!("{}/dashboard/batches", s.app.base)).await;
    let bar = format!("document.querySelector('tr[data-batch=\"{batch}\"] progress')");
    let seen = watch(
        &s,
        &format!("const p = {bar}; return p ? Number(p.value) : null;"),
        |seen| seen.last() == Some(&3),
    )
    .await;
    assert!(seen.len() >= 2, "the bar was seen at one value only: {seen:?}");
    s.browser
        .text_until(&format!("tr[data-batch=\"{batch}\"] [data-field=\"state\"]"), |t| {
            t == "finished"
        })
        .await;
    s.app.stop().await;
}

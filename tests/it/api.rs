//! The HTTP API against a real Redis and PostgreSQL, with workers in-process.
use std::time::Duration;

use nightshift_common::auth::Scope;
use serde_json::{Value, json};

use crate::support::*;

const RW: &[Scope] = &[Scope::JobsRead, Scope::JobsWrite];

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_enqueued_job_runs_and_its_status_reads_succeeded() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(RW);
    let resp = app.enqueue(&token, json!({"kind": "noop"}), None).await;
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let status = app.wait_state(&token, &id, "succeeded", Duration::from_secs(10)).await;
    assert_eq!(status["attempts"], 1);
    assert_eq!(status["kind"], "noop");
    for field in ["created_at", "started_at", "finished_at"] {
        assert!(status[field].is_string(), "{field} missing in {status}");
    }
    app.stop().await;
}

#[tokio::test]
async fn missing_or_bad_tokens_are_401_and_wrong_scopes_403() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let url = format!("{}/v1/jobs", app.base);
    let body = json!({"kind": "noop"});

    let none = app.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");

    let forged = nightshift_common::auth::TokenKeys::from_secret(&secrecy::SecretString::from("x".repeat(48)))
        .issue("intruder", &[Scope::JobsWrite], Duration::from_secs(60))
        .unwrap();
    assert_eq!(app.enqueue(&forged, body.clone(), None).await.status(), 401);
    assert_eq!(app.enqueue("not.a.jwt", body.clone(), None).await.status(), 401);

    let read_only = token(&[Scope::JobsRead]);
    let (status, err) = error_of(app.enqueue(&read_only, body.clone(), None).await).await;
    assert_eq!(status, 403);
    assert!(err["error"]["message"].as_str().unwrap().contains("jobs:write"));

    let write_only = token(&[Scope::JobsWrite]);
    let id = app
        .enqueue(&write_only, body, None)
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.status(&write_only, &id).await.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn each_bad_input_gets_its_status_and_names_the_field() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let token = token(RW);
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"kind": "no.such.kind"}), 422, "kind"),
        (json!({"payload": {}}), 422, "body"),
        (
            json!({"kind": "cashflow.project", "payload": {"user_id": "seven"}}),
            422,
            "payload.user_id",
        ),
        (json!({"kind": "cashflow.project", "payload": {}}), 422, "payload"),
        (
            json!({"kind": "noop", "payload": {"surprise": 1}}),
            422,
            "payload.surprise",
        ),
        (json!({"kind": "noop", "max_attempts": 0}), 422, "max_attempts"),
        (
            json!({"kind": "noop", "delay_secs": 99_999_999_999u64}),
            422,
            "delay_secs",
        ),
        (json!({"kind": "noop", "colour": "red"}), 422, "colour"),
    ];
    for (body, want, field) in cases {
        let (status, err) = error_of(app.enqueue(&token, body.clone(), None).await).await;
        assert_eq!(status, want, "{body} -> {err}");
        assert_eq!(err["error"]["field"], field, "{body} -> {err}");
        assert!(!err["error"]["message"].as_str().unwrap().is_empty());
    }
    let missing = error_of(
        app.enqueue(&token, json!({"kind": "cashflow.project", "payload": {}}), None)
            .await,
    )
    .await;
    assert!(
        missing.1["error"]["message"].as_str().unwrap().contains("user_id"),
        "{}",
        missing.1
    );

    let url = format!("{}/v1/jobs", app.base);
    let malformed = app
        .http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(malformed).await;
    assert_eq!((status, err["error"]["field"].as_str()), (400, Some("body")), "{err}");

    let huge = json!({"kind": "noop", "payload": {"pad": "x".repeat(70 * 1024)}});
    let (status, err) = error_of(
        app.http
            .post(&url)
            .bearer_auth(&token)
            .json(&huge)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, err["error"]["field"].as_str()), (413, Some("body")), "{err}");

    let (status, err) = error_of(app.enqueue(&token, json!({"kind": "noop"}), Some("has space")).await).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("Idempotency-Key")),
        "{err}"
    );

    let (status, _) = error_of(app.status(&token, "not-a-uuid").await).await;
    assert_eq!(status, 422);
    let (status, _) = error_of(app.status(&token, &uuid::Uuid::now_v7().to_string()).await).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_twice_makes_one_job_and_reused_for_another_request_is_422() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let token = token(RW);
    let first = app.enqueue(&token, json!({"kind": "noop"}), Some("order-42")).await;
    let second = app.enqueue(&token, json!({"kind": "noop"}), Some("order-42")).await;
    assert_eq!(
        (first.status(), second.status()),
        (reqwest::StatusCode::ACCEPTED, reqwest::StatusCode::ACCEPTED)
    );
    let (a, b) = (
        first.json::<Value>().await.unwrap(),
        second.json::<Value>().await.unwrap(),
    );
    assert_eq!(a["id"], b["id"]);
    let other = app
        .enqueue(&token, json!({"kind": "noop"}), Some("order-43"))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_ne!(a["id"], other["id"]);
    // The same key with another request is refused, and nothing is enqueued for it.
    for changed in [
        json!({"kind": "diag.sleep", "payload": {"ms": 1}}),
        json!({"kind": "noop", "max_attempts": 7}),
    ] {
        let (status, err) = error_of(app.enqueue(&token, changed, Some("order-42")).await).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some("Idempotency-Key")),
            "{err}"
        );
    }
    // Keys are per client: another client's "order-42" is its own job.
    let theirs = keys().issue("other-client", RW, Duration::from_secs(60)).unwrap();
    let (status, v) = error_of(
        app.enqueue(
            &theirs,
            json!({"kind": "diag.sleep", "payload": {"ms": 1}}),
            Some("order-42"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 202);
    assert_ne!(v["id"], a["id"]);

    let q = queue(&redis, "default").await;
    assert_eq!(q.counts().await.unwrap().queued, 3);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM job_history")
        .fetch_one(&db.pool().await)
        .await
        .unwrap();
    assert_eq!(rows, 3);
    app.stop().await;
}

#[tokio::test]
async fn enqueue_answers_503_while_redis_is_down_and_works_again_after() {
    let (mut redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let token = token(RW);
    assert_eq!(app.enqueue(&token, json!({"kind": "noop"}), None).await.status(), 202);
    redis.kill();
    let (status, err) = error_of(app.enqueue(&token, json!({"kind": "noop"}), None).await).await;
    assert_eq!(status, 503, "{err}");
    assert_eq!(err["error"]["code"], "unavailable");
    let ready = app.http.get(format!("{}/health/ready", app.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    redis.restart();
    wait_for("enqueue to work again", Duration::from_secs(15), || async {
        (app.enqueue(&token, json!({"kind": "noop"}), None).await.status() == 202).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_job_that_always_fails_ends_dead_after_exactly_its_max_attempts() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(RW);
    let body = json!({"kind": "diag.fail", "payload": {"message": "boom"}, "max_attempts": 3});
    let id = app.enqueue_id(&token, body).await;
    let status = app.wait_state(&token, &id, "dead", Duration::from_secs(20)).await;
    assert_eq!(status["attempts"], 3);
    assert!(
        status["error"].as_str().unwrap().contains("boom (attempt 3)"),
        "{status}"
    );

    // The history records every attempt's failure, then the death (its creation is the row's
    // `created_at`, not an event).
    let pool = db.pool().await;
    let states = wait_for("history to record the death", Duration::from_secs(10), || async {
        let events: Value = sqlx::query_scalar("SELECT events FROM job_history WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .ok()?;
        let states: Vec<String> = events
            .as_array()?
            .iter()
            .map(|e| e["state"].as_str().unwrap_or("").to_string())
            .collect();
        (states.last().map(String::as_str) == Some("dead")).then_some(states)
    })
    .await;
    assert_eq!(states, ["retrying", "retrying", "dead"]);
    app.stop().await;
}

#[tokio::test]
async fn a_cashflow_projection_is_stored_once_however_often_it_runs() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let pool = db.pool().await;
    sqlx::query("INSERT INTO users (id, email, time_zone) VALUES (7, 'u@example.com', 'Europe/Paris')")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO accounts (user_id, name, balance) VALUES (7, 'main', 100000)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO recurring_items (user_id, name, amount, cadence, anchor_date) VALUES (7, 'rent', -90000, 'monthly', '2024-01-01')")
        .execute(&pool)
        .await
        .unwrap();
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(RW);
    let body =
        json!({"kind": "cashflow.project", "payload": {"user_id": 7, "as_of": "2024-02-01", "horizon_days": 29}});
    let mut ids = vec![];
    for _ in 0..3 {
        ids.push(app.enqueue_id(&token, body.clone()).await);
    }
    for id in &ids {
        let s = app.wait_state(&token, id, "succeeded", Duration::from_secs(10)).await;
        assert_eq!(s["result"]["lowest_balance"], 10_000);
    }
    let (rows, lowest): (i64, i64) =
        sqlx::query_as("SELECT count(*), min(lowest_balance) FROM cashflow_projections WHERE user_id = 7")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((rows, lowest), (1, 10_000));

    let missing = app
        .enqueue(
            &token,
            json!({"kind": "cashflow.project", "payload": {"user_id": 999}}),
            None,
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let s = app
        .wait_state(&token, missing["id"].as_str().unwrap(), "dead", Duration::from_secs(10))
        .await;
    assert_eq!(s["attempts"], 1, "an unknown user is not retried: {s}");
    app.stop().await;
}

#[tokio::test]
async fn a_finished_jobs_status_is_read_from_history_once_redis_let_it_expire() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    config.queue.finished_ttl = Duration::from_secs(1);
    let app = App::start(&config, true).await;
    let token = token(RW);
    let body = json!({"kind": "diag.sleep", "payload": {"ms": 1}});
    let id = app.enqueue_id(&token, body).await;
    let live = app.wait_state(&token, &id, "succeeded", Duration::from_secs(10)).await;
    let q = queue(&redis, "default").await;
    wait_for("the Redis record to expire", Duration::from_secs(10), || async {
        q.inspect(&id).await.ok()?.is_none().then_some(())
    })
    .await;
    // The progress reaches the history through its own batched writer: wait for it too.
    let from_history = wait_for(
        "the history's record with its progress",
        Duration::from_secs(10),
        || async {
            let s = app.wait_state(&token, &id, "succeeded", Duration::from_secs(10)).await;
            s["progress"].is_object().then_some(s)
        },
    )
    .await;
    for field in ["id", "kind", "state", "attempts", "max_attempts", "result"] {
        assert_eq!(from_history[field], live[field], "{field}: {from_history} vs {live}");
    }
    assert!(
        from_history["finished_at"].is_string() && from_history["started_at"].is_string(),
        "{from_history}"
    );
    // The last progress it reported is kept with it.
    assert_eq!(live["progress"]["percent"], 100, "{live}");
    assert_eq!(
        (
            &from_history["progress"]["percent"],
            &from_history["progress"]["message"]
        ),
        (&live["progress"]["percent"], &live["progress"]["message"]),
        "{from_history}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after_and_so_does_a_token_guesser() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    // Two requests a minute per client, three failed authentications a minute per address.
    config.api_limits.per_client = (2, 2);
    config.api_limits.auth_failures = (3, 3);
    let app = App::start(&config, false).await;
    let status_of = |token: String| {
        let req = app.http.get(format!("{}/v1/jobs/{}", app.base, uuid::Uuid::now_v7()));
        async move { req.bearer_auth(token).send().await.unwrap() }
    };
    let mine = token(RW);
    for _ in 0..2 {
        assert_eq!(
            status_of(mine.clone()).await.status(),
            404,
            "within the rate: the route runs"
        );
    }
    let limited = status_of(mine.clone()).await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "retry-after {retry}");
    let (_, body) = error_of(limited).await;
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another client is not slowed by this one.
    let other = keys().issue("other-client", RW, Duration::from_secs(60)).unwrap();
    assert_eq!(status_of(other).await.status(), 404);

    for _ in 0..3 {
        assert_eq!(status_of("not-a-token".into()).await.status(), 401);
    }
    assert_eq!(
        status_of("still-not-a-token".into()).await.status(),
        429,
        "guessing is slowed down"
    );
    app.stop().await;
}

#[tokio::test]
async fn responses_carry_security_headers_and_cors_answers_only_configured_origins() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    for path in ["/v1/jobs/x", "/health/live"] {
        let r = app.http.get(format!("{}{path}", app.base)).send().await.unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["cache-control"], "no-store");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        assert!(h.contains_key("x-request-id"));
    }
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/v1/jobs", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let refused = preflight("https://evil.example.net").await.unwrap();
    assert!(!refused.headers().contains_key("access-control-allow-origin"));
    app.stop().await;
}

#[tokio::test]
async fn a_client_reads_only_the_jobs_it_enqueued_unless_it_is_an_admin() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let mine = token(RW);
    let id = app.enqueue_id(&mine, json!({"kind": "noop"})).await;
    assert_eq!(app.status(&mine, &id).await.status(), 200);
    let other = keys().issue("other-client", RW, Duration::from_secs(60)).unwrap();
    let (status, body) = error_of(app.status(&other, &id).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "not even its existence"
    );
    let admin = keys()
        .issue("operator", &[Scope::JobsRead, Scope::Admin], Duration::from_secs(60))
        .unwrap();
    assert_eq!(app.status(&admin, &id).await.status(), 200);
    // A job the platform made itself (here an operator's run-now) is the operators' to read.
    let run = app
        .http
        .post(format!("{}/v1/schedules/canary/run", app.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let system = run.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(app.status(&mine, &system).await.status(), 404);
    assert_eq!(app.status(&admin, &system).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn forged_tokens_are_each_401_and_the_handler_never_runs() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), false).await;
    let now = chrono::Utc::now().timestamp();
    let claims = |patch: Value| {
        let mut c = json!({"sub": "intruder", "scope": "jobs:write jobs:read admin", "iat": now, "exp": now + 600,
                           "iss": "nightshift", "aud": "nightshift-api"});
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let ours = EncodingKey::from_secret(SECRET.as_bytes());
    let sign = |c: Value| encode(&Header::new(Algorithm::HS256), &c, &ours).unwrap();
    let valid = sign(claims(json!({})));
    let parts: Vec<&str> = valid.split('.').collect();
    let with_header = |h: &str| format!("{}.{}.{}", B64.encode(h), parts[1], parts[2]);
    let mut kid = Header::new(Algorithm::HS256);
    kid.kid = Some("not-a-key".into());
    let forged = [
        (
            "another secret",
            encode(
                &Header::new(Algorithm::HS256),
                &claims(json!({})),
                &EncodingKey::from_secret(&[7u8; 48]),
            )
            .unwrap(),
        ),
        (
            "alg none",
            format!("{}.{}.", B64.encode(r#"{"alg":"none","typ":"JWT"}"#), parts[1]),
        ),
        (
            "HS256 signature under an RS256 header",
            with_header(r#"{"alg":"RS256","typ":"JWT"}"#),
        ),
        (
            "tampered payload",
            format!(
                "{}.{}.{}",
                parts[0],
                B64.encode(claims(json!({"sub": "someone-else"})).to_string()),
                parts[2]
            ),
        ),
        ("expired", sign(claims(json!({"iat": now - 7200, "exp": now - 3600})))),
        ("no exp", sign(claims(json!({"exp": null})))),
        ("not yet valid", sign(claims(json!({"nbf": now + 3600})))),
        ("wrong audience", sign(claims(json!({"aud": "another-api"})))),
        ("wrong issuer", sign(claims(json!({"iss": "someone"})))),
        ("unknown kid", encode(&kid, &claims(json!({})), &ours).unwrap()),
        ("malformed", "not.a.jwt".into()),
        ("empty segments", "..".into()),
    ];
    for (what, token) in forged {
        let r = app.enqueue(&token, json!({"kind": "noop"}), None).await;
        assert_eq!(r.status(), 401, "{what}");
    }
    assert_eq!(
        queue(&redis, "default").await.counts().await.unwrap().queued,
        0,
        "no handler ran"
    );
    // The control: the same claims, properly signed, are accepted.
    assert_eq!(app.enqueue(&valid, json!({"kind": "noop"}), None).await.status(), 202);
    app.stop().await;
}

#[tokio::test]
async fn a_snoozed_job_uses_no_attempt_however_often_it_snoozes() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&config(&redis, &db), true).await;
    let token = token(RW);
    // One attempt allowed, five snoozes: a retry would have ended it dead at the first.
    let body = json!({"kind": "diag.snooze", "payload": {"times": 5}, "max_attempts": 1});
    let id = app.enqueue_id(&token, body).await;
    let status = app.wait_state(&token, &id, "succeeded", Duration::from_secs(20)).await;
    assert_eq!(status["attempts"], 1, "{status}");
    assert_eq!(status["result"], json!({"snoozed": 5, "attempt": 1}));
    app.stop().await;
}

#[tokio::test]
async fn jobs_lost_when_redis_restarts_empty_are_rederived_from_the_history_and_run_once() {
    let (mut redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let api = App::start(&config, false).await;
    let token = token(RW);
    let ready = || async {
        let r = api.http.get(format!("{}/health/ready", api.base)).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(ready().await.0, 200, "a first start records the epoch and is ready");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(api.enqueue_id(&token, json!({"kind": "noop"})).await);
    }
    // No persistence: the restarted Redis is empty, and no worker runs yet to recover it.
    redis.restart();
    // Once the connection is back, readiness says the data is missing, not merely "down".
    let status = wait_for("readiness to see the lost data", Duration::from_secs(10), || async {
        let (status, body) = ready().await;
        (body["redis"] != "unavailable").then_some(status)
    })
    .await;
    assert_eq!(status, 503);
    assert_eq!(ready().await.1["redis"], "recovering");
    // Work accepted meanwhile is stored in both, as always.
    ids.push(api.enqueue_id(&token, json!({"kind": "noop"})).await);

    let workers = App::start(&config, true).await;
    for id in &ids {
        let status = api.wait_state(&token, id, "succeeded", Duration::from_secs(20)).await;
        assert_eq!(status["attempts"], 1, "{status}");
    }
    wait_for("readiness after the recovery", Duration::from_secs(10), || async {
        (ready().await.0 == 200).then_some(())
    })
    .await;
    // Each ran once in the new Redis: the job accepted during the outage was not pushed again.
    let counts = queue(&redis, "default").await.counts().await.unwrap();
    assert_eq!(counts.succeeded_total, 4, "{counts:?}");
    workers.stop().await;
    api.stop().await;
}

/// An operator's cancel is on record in the history: after Redis restarts empty, the cancelled
/// job is not re-derived and does not run, and its status still reads cancelled.
#[tokio::test]
async fn a_job_an_operator_cancelled_stays_cancelled_when_redis_restarts_empty() {
    use nightshift_api::operations::{Actor, JobAction};
    let (mut redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let api = App::start(&config, false).await;
    let token = token(RW);
    let ready = || async {
        let r = api.http.get(format!("{}/health/ready", api.base)).send().await.ok()?;
        (r.status() == 200).then_some(())
    };
    ready().await.expect("a first start records the epoch and is ready");
    let cancelled = api.enqueue_id(&token, json!({"kind": "noop"})).await;
    let kept = api.enqueue_id(&token, json!({"kind": "noop"})).await;
    let state = Actor::cli()
        .job(
            &db.pool().await,
            &queue(&redis, "default").await,
            &cancelled,
            JobAction::Cancel,
        )
        .await
        .unwrap();
    assert_eq!(state, "cancelled");
    redis.restart();
    let workers = App::start(&config, true).await;
    api.wait_state(&token, &kept, "succeeded", Duration::from_secs(20))
        .await;
    wait_for("readiness after the recovery", Duration::from_secs(10), ready).await;
    let status = api
        .wait_state(&token, &cancelled, "cancelled", Duration::from_secs(5))
        .await;
    assert!(status["finished_at"].is_string(), "{status}");
    let counts = queue(&redis, "default").await.counts().await.unwrap();
    assert_eq!(counts.succeeded_total, 1, "only the kept job ran: {counts:?}");
    workers.stop().await;
    api.stop().await;
}

/// Retrying the dead set puts each job back on record as queued, as one retry does: a Redis
/// loss before they ran would otherwise leave them dead, the operator's retry undone.
#[tokio::test]
async fn retrying_the_dead_set_records_each_job_queued_again() {
    use nightshift_api::operations::{Actor, DeadAction};
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = config(&redis, &db);
    let app = App::start(&config, true).await;
    let token = token(RW);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let body = json!({"kind": "diag.fail", "max_attempts": 1});
        ids.push(app.enqueue_id(&token, body).await);
    }
    for id in &ids {
        app.wait_state(&token, id, "dead", Duration::from_secs(20)).await;
    }
    // No worker runs them again: what the history says is the operator's doing.
    app.stop().await;
    let pool = db.pool().await;
    let moved = Actor::cli()
        .dead(&pool, &queue(&redis, "default").await, DeadAction::Retry, 2)
        .await
        .unwrap();
    assert_eq!(moved, 2);
    let rows: Vec<(String, Option<chrono::DateTime<chrono::Utc>>)> =
        sqlx::query_as("SELECT state, finished_at FROM job_history WHERE id::text = ANY($1)")
            .bind(&ids)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows, vec![("queued".to_string(), None); 2]);
}

/// A Redis that restarts from its append-only file but without the last writes it had answered
/// (`everysec` on a busy disk): the accepted jobs it lost are re-derived from the history once
/// the restart is seen, and the ones it kept are not pushed twice.
#[tokio::test]
async fn jobs_an_append_only_restart_lost_are_rederived_and_the_kept_ones_run_once() {
    let mut redis = PrivateRedis::start_durable();
    let db = TestDb::create().await;
    let config = config(&redis, &db);
    let api = App::start(&config, false).await;
    let token = token(RW);
    let kept = api.enqueue_id(&token, json!({"kind": "noop"})).await;
    // Workers watch the server: they see it before and after the restart.
    let workers = App::start(&config, true).await;
    api.wait_state(&token, &kept, "succeeded", Duration::from_secs(20))
        .await;
    // A job accepted while the queue is paused, its writes then gone as if never written to
    // the file: the restarted Redis does not have it.
    let q = queue(&redis, "default").await;
    q.pause().await.unwrap();
    let lost = api.enqueue_id(&token, json!({"kind": "noop"})).await;
    let q = restart_redis_without(&mut redis, &q, &lost).await;
    let status = api
        .wait_state(&token, &lost, "succeeded", Duration::from_secs(30))
        .await;
    assert_eq!(status["attempts"], 1, "{status}");
    // The kept job was not pushed again: one run in all.
    let runs = q.inspect(&kept).await.unwrap().map(|r| r.attempts);
    assert_eq!(runs, Some(1));
    workers.stop().await;
    api.stop().await;
}

#[tokio::test]
async fn a_job_recorded_by_its_worker_before_the_api_still_belongs_to_its_client() {
    use nightshift_common::history;
    use nightshift_queue::{AttemptReport, JobRecord, JobState};
    let db = TestDb::create().await;
    let pool = db.pool().await;
    let id = nightshift_queue::new_job_id();
    let now = chrono::Utc::now().timestamp_millis();
    // A fast worker: the job ran and its report was written before the API's own record.
    let report = AttemptReport {
        id: id.clone(),
        queue: "default".into(),
        kind: "noop".into(),
        payload: Some("{}".into()),
        state: JobState::Succeeded,
        attempt: 1,
        max_attempts: Some(3),
        created_at_ms: Some(now),
        started_at_ms: Some(now),
        finished_at_ms: now,
        error: None,
        result: None,
        worker: "w1".into(),
    };
    history::write_batch(&pool, &[report]).await.unwrap();
    let accepted = JobRecord::pushed(
        &id,
        "default",
        &nightshift_queue::NewJob::new("noop", "{}").max_attempts(3),
        now,
    );
    history::record_enqueued(
        &pool,
        &[history::Submitted {
            record: accepted.clone(),
            by: "client-a".into(),
            user: None,
        }],
    )
    .await
    .unwrap();
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    assert_eq!(
        history::submitter(&pool, uuid).await.unwrap(),
        Some((Some("client-a".to_string()), None))
    );
    let (state, attempts): (String, i32) = sqlx::query_as("SELECT state, attempts FROM job_history WHERE id = $1")
        .bind(uuid)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        (state.as_str(), attempts),
        ("succeeded", 1),
        "the worker's outcome stands"
    );
}

#[tokio::test]
async fn an_address_over_its_rate_gets_429_whichever_token_it_uses() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let mut config = config(&redis, &db);
    // Three requests a minute per address; clients' own budgets are far from spent.
    config.api_limits.per_ip = (3, 3);
    let app = App::start(&config, false).await;
    let status_of = |token: String| {
        let req = app.http.get(format!("{}/v1/jobs/{}", app.base, uuid::Uuid::now_v7()));
        async move { req.bearer_auth(token).send().await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(status_of(token(RW)).await.status(), 404, "within the address's rate");
    }
    let other = keys().issue("other-client", RW, Duration::from_secs(60)).unwrap();
    let limited = status_of(other).await;
    assert_eq!(
        limited.status(),
        429,
        "the address is over its rate, whatever the token"
    );
    assert!(limited.headers().contains_key("retry-after"));
    app.stop().await;
}

//! The rotating token keyring against real PostgreSQL and Redis: two API instances pick up a
//! rotation without a restart, reject no valid token while it happens, honour the old key for
//! its grace period and not after.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use nightshift_common::{
    auth::Scope,
    keyring::{self, MasterKey},
};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::*;

const MASTER: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn keyring_config(redis: &PrivateRedis, db: &TestDb) -> nightshift_common::Config {
    let mut c = config(redis, db);
    c.master_key = Some(SecretString::from(MASTER));
    c
}

fn master() -> MasterKey {
    MasterKey::from_hex(&SecretString::from(MASTER)).unwrap()
}

async fn status_with(app: &App, token: &str) -> u16 {
    app.http
        .get(format!("{}/v1/admin/keys", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_rotation_reaches_every_instance_without_a_restart_and_rejects_no_valid_token() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = keyring_config(&redis, &db);
    let pool = db.pool().await;
    let (a, b) = (App::start(&config, false).await, App::start(&config, false).await);
    let issuer = keyring::token_keys(&pool, &master()).await.unwrap();
    let old_kid = issuer.signing_kid().unwrap();
    let old = issuer
        .issue("operator", &[Scope::Admin], Duration::from_secs(600))
        .unwrap();
    assert_eq!((status_with(&a, &old).await, status_with(&b, &old).await), (200, 200));

    // Requests with the old token hammer both instances while one of them rotates.
    let (stop, sent, refused) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let load: Vec<_> = [a.base.clone(), b.base.clone()]
        .into_iter()
        .map(|base| {
            let (stop, sent, refused, old) = (stop.clone(), sent.clone(), refused.clone(), old.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = http
                        .get(format!("{base}/v1/admin/keys"))
                        .bearer_auth(&old)
                        .send()
                        .await
                        .unwrap();
                    sent.fetch_add(1, Ordering::Relaxed);
                    if r.status() != 200 {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let rotated: Value = a
        .http
        .post(format!("{}/v1/admin/keys/rotate", a.base))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_string();
    assert_ne!(new_kid, old_kid);
    // A token from the new key works on the other instance at once: it reloads on the
    // announcement, or on the first token naming a key it does not know.
    let fresh_issuer = keyring::token_keys(&pool, &master()).await.unwrap();
    assert_eq!(fresh_issuer.signing_kid().as_deref(), Some(new_kid.as_str()));
    let new = fresh_issuer
        .issue("operator", &[Scope::Admin], Duration::from_secs(600))
        .unwrap();
    assert_eq!(status_with(&b, &new).await, 200);
    let listed: Value = b
        .http
        .get(format!("{}/v1/admin/keys", b.base))
        .bearer_auth(&new)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["signing_kid"], new_kid.as_str(), "b signs with the new key too");
    assert!(!listed.to_string().contains("sealed"), "no key material in the listing");
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    assert!(sent.load(Ordering::Relaxed) > 0);
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "no valid token refused during the rotation"
    );

    // The old key's grace ends (here: moved into the past) and both instances refuse it.
    sqlx::query("UPDATE signing_keys SET retire_after = now() - interval '1 second' WHERE kid = $1")
        .bind(&old_kid)
        .execute(&pool)
        .await
        .unwrap();
    let mut conn = nightshift_queue::connect_redis(&redis.url()).await.unwrap();
    keyring::announce(&mut conn, &config.queue.prefix).await.unwrap();
    for app in [&a, &b] {
        wait_for("the old token to be refused", Duration::from_secs(10), || async {
            (status_with(app, &old).await == 401).then_some(())
        })
        .await;
        assert_eq!(status_with(app, &new).await, 200);
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_daily_check_rotates_only_an_old_key_and_concurrent_rotations_leave_one_active() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = keyring_config(&redis, &db);
    let pool = db.pool().await;
    let app = App::start(&config, true).await;
    let admin = keyring::token_keys(&pool, &master())
        .await
        .unwrap()
        .issue(
            "operator",
            &[Scope::Admin, Scope::JobsRead, Scope::JobsWrite],
            Duration::from_secs(600),
        )
        .unwrap();
    let check = |force: bool| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let id = app
                .enqueue_id(&admin, json!({"kind": "secrets.rotate", "payload": {"force": force}}))
                .await;
            app.wait_state(&admin, &id, "succeeded", Duration::from_secs(20)).await["result"].clone()
        }
    };
    assert_eq!(check(false).await["rotated"], false, "a fresh key is kept");
    sqlx::query("UPDATE signing_keys SET created_at = now() - interval '91 days' WHERE status = 'active'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(check(false).await["rotated"], true, "a 91-day-old key is rotated");
    assert_eq!(check(false).await["rotated"], false);
    assert_eq!(check(true).await["rotated"], true, "forced");

    let rotations: Vec<_> = (0..5)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { keyring::rotate(&pool, &master(), Duration::from_secs(60)).await })
        })
        .collect();
    for r in rotations {
        r.await.unwrap().unwrap();
    }
    let by_status: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM signing_keys GROUP BY status ORDER BY status")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(by_status, vec![("active".into(), 1), ("previous".into(), 7)]);
    // The admin token, signed by the first key, is still within its grace.
    assert_eq!(status_with(&app, &admin).await, 200);
    app.stop().await;
}

#[tokio::test]
async fn tokens_naming_unknown_or_no_keys_are_refused_by_a_keyring() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let app = App::start(&keyring_config(&redis, &db), false).await;
    // Signed with the environment's secret (no kid), and with a keyring key that is not ours.
    let env_token = token(&[Scope::Admin]);
    let foreign = nightshift_common::auth::TokenKeys::from_keyring(&[nightshift_common::auth::RingKey {
        kid: "k-forged".into(),
        secret: secrecy::SecretSlice::from(vec![7u8; 32]),
        active: true,
        retire_after: None,
    }])
    .unwrap()
    .issue("operator", &[Scope::Admin], Duration::from_secs(60))
    .unwrap();
    for t in [env_token, foreign] {
        assert_eq!(status_with(&app, &t).await, 401);
    }
    app.stop().await;
}

#[tokio::test]
async fn no_master_key_secret_or_token_appears_in_the_api_log() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = keyring_config(&redis, &db);
    let addr = format!("127.0.0.1:{}", free_port());
    let mut api = Proc::spawn(
        &["api"],
        &config,
        &[
            ("NIGHTSHIFT_MASTER_KEY", MASTER),
            ("NIGHTSHIFT_API_ADDR", &addr),
            ("RUST_LOG", "debug"),
        ],
    );
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{addr}{p}");
    wait_for("the api to answer", Duration::from_secs(30), || async {
        let r = http.get(url("/health/live")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    let token = keyring::token_keys(&db.pool().await, &master())
        .await
        .unwrap()
        .issue("operator", &[Scope::Admin], Duration::from_secs(600))
        .unwrap();
    use reqwest::Method;
    for (method, path, bearer, expected) in [
        (Method::GET, "/v1/admin/keys", token.as_str(), 200),
        (Method::GET, "/v1/admin/keys", "garbage", 401),
        (Method::POST, "/v1/admin/keys/rotate", token.as_str(), 200),
        (Method::GET, "/v1/admin/keys", token.as_str(), 200),
    ] {
        let status = http
            .request(method, url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, expected, "{path}");
    }
    api.signal("TERM");
    let (stopped, log) = api.wait_output();
    assert!(stopped, "{log}");
    assert!(
        log.contains("api listening") && log.contains("token rejected"),
        "the log was captured: {log}"
    );
    for (what, secret) in [
        ("master key", MASTER),
        ("JWT secret", SECRET),
        ("token", token.as_str()),
    ] {
        assert!(!log.contains(secret), "the {what} is in the log");
    }
    let signature = token.rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "a token signature is in the log");
}

#[tokio::test]
async fn a_rotation_that_fails_half_way_leaves_the_keyring_as_it_was() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let config = keyring_config(&redis, &db);
    let pool = db.pool().await;
    let app = App::start(&config, false).await;
    let issuer = keyring::token_keys(&pool, &master()).await.unwrap();
    let token = issuer
        .issue("operator", &[Scope::Admin], Duration::from_secs(600))
        .unwrap();
    let before: Vec<(String, String, Option<chrono::DateTime<chrono::Utc>>)> =
        sqlx::query_as("SELECT kid, status, retire_after FROM signing_keys ORDER BY kid")
            .fetch_all(&pool)
            .await
            .unwrap();
    // The failure strikes after the old key was demoted, when the new one is written: as a
    // crash there would, it aborts the transaction.
    sqlx::query(
        "CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'injected failure'; END $$",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("CREATE TRIGGER fail_insert BEFORE INSERT ON signing_keys FOR EACH ROW EXECUTE FUNCTION fail_insert()")
        .execute(&pool)
        .await
        .unwrap();
    let rotate = a_post(&app, "/v1/admin/keys/rotate", &token).await;
    assert_eq!(rotate, 500, "the rotation failed");
    assert!(
        keyring::rotate(&pool, &master(), Duration::from_secs(60))
            .await
            .is_err()
    );
    let after: Vec<(String, String, Option<chrono::DateTime<chrono::Utc>>)> =
        sqlx::query_as("SELECT kid, status, retire_after FROM signing_keys ORDER BY kid")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(after, before, "the old key is still the active one");
    assert_eq!(status_with(&app, &token).await, 200);
    // Once the fault is gone, rotation works.
    sqlx::query("DROP TRIGGER fail_insert ON signing_keys")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(a_post(&app, "/v1/admin/keys/rotate", &token).await, 200);
    app.stop().await;
}

async fn a_post(app: &App, path: &str, token: &str) -> u16 {
    app.http
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

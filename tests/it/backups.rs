//! Backups against real PostgreSQL, pg_dump and pg_restore, a local directory and an
//! S3-compatible server (moto): backup → restore → compare equal; tampering and a wrong key
//! refused; a backup under concurrent writes restores a consistent snapshot; retention; the
//! jobs and the CLI.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use nightshift_common::{Config, auth::Scope, config::BackupStore, db};
use nightshift_workers::jobs::backup::{self, BackupError, Backups};
use secrecy::SecretString;
use serde_json::json;
use sqlx::{PgPool, migrate::MigrateDatabase};

use crate::support::*;

/// A backup directory removed with the test.
struct Dir(std::path::PathBuf);

impl Dir {
    fn new() -> Self {
        let d = std::env::temp_dir().join(format!("nightshift-backups-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn with_backups(mut config: Config, store: BackupStore, key: &str) -> Config {
    config.backup.store = store;
    config.backup.key = Some(SecretString::from(key.to_string()));
    config
}

/// An empty database (no migrations), dropped with the test.
async fn empty_db() -> TestDb {
    let admin = pg_admin_url();
    let url = db::with_database(&admin, &format!("ns_restore_{}", uuid::Uuid::new_v4().simple())).unwrap();
    sqlx::Postgres::create_database(&url).await.unwrap();
    TestDb { url }
}

/// Accounts whose balances always sum to 1,000 × their number, a transfer ledger, and rows
/// of the types whose text form depends on session settings.
async fn seed(pool: &PgPool, accounts: i64) {
    sqlx::raw_sql(
        "CREATE SCHEMA ledger;
         CREATE TABLE ledger.accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL);
         CREATE TABLE ledger.transfers (id bigserial PRIMARY KEY, from_id bigint NOT NULL REFERENCES ledger.accounts,
             to_id bigint NOT NULL REFERENCES ledger.accounts, amount bigint NOT NULL, at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE ledger.odd_types (id int PRIMARY KEY, t timestamptz, d date, i interval, n numeric, f float8,
             b bytea, j jsonb, note text);
         INSERT INTO ledger.odd_types VALUES
             (1, '2026-03-29 01:30:00+01', '2026-02-28', '1 day 02:00', 12345.6789, 0.1, '\\xdeadbeef',
              '{\"a\": [1, 2]}', 'Zoë''s €5 — ünïcode'),
             (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO ledger.accounts SELECT g, 'owner ' || g, 1000 FROM generate_series(1, $1) g")
        .bind(accounts)
        .execute(pool)
        .await
        .unwrap();
}

async fn sum_and_count(url: &str) -> (i64, i64, i64) {
    let pool = db::connect(url, 1).await.unwrap();
    let r = sqlx::query_as(
        "SELECT (SELECT sum(balance)::bigint FROM ledger.accounts), (SELECT count(*) FROM ledger.accounts), (SELECT count(*) FROM ledger.transfers)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    r
}

#[tokio::test]
async fn a_backup_restores_into_an_empty_database_equal_to_the_source() {
    let (redis, db, dir) = (PrivateRedis::start(), TestDb::create().await, Dir::new());
    let (key, _) = backup::keygen();
    let config = with_backups(config(&redis, &db), BackupStore::Local(dir.0.clone()), &key);
    let pool = db.pool().await;
    seed(&pool, 500).await;
    let backups = Backups::from_config(&config);

    let m = backups.take(&pool).await.unwrap();
    assert_eq!(m.status, "succeeded");
    let file = std::fs::read(dir.0.join(&m.location)).unwrap();
    assert_eq!(m.size_bytes, Some(file.len() as i64));
    assert_eq!(m.sha256.as_deref().map(str::len), Some(64));
    assert!(
        file.starts_with(b"age-encryption.org/v1"),
        "the stored file is age-encrypted"
    );
    assert!(
        !file.windows(5).any(|w| w == b"PGDMP") && !file.windows(7).any(|w| w == b"owner 1"),
        "no plaintext of the dump is stored"
    );
    assert!(
        m.pg_dump_version
            .as_deref()
            .unwrap()
            .starts_with("pg_dump (PostgreSQL)")
    );
    let tables = &m.tables.as_ref().unwrap().0;
    assert_eq!(tables["ledger.accounts"].rows, 500);
    assert_eq!(tables["ledger.odd_types"].rows, 2);

    // The source moves on after the dump; the restore must equal the dump, not today.
    sqlx::query("UPDATE ledger.accounts SET balance = 0 WHERE id <= 10")
        .execute(&pool)
        .await
        .unwrap();

    let target = empty_db().await;
    let restored = backups.restore(&pool, m.id, &target.url, false).await.unwrap();
    assert!(restored.tables >= 3 && restored.rows >= 502, "{restored:?}");
    assert_eq!(sum_and_count(&target.url).await, (500_000, 500, 0));
    let target_pool = db::connect(&target.url, 1).await.unwrap();
    let note: String = sqlx::query_scalar("SELECT note FROM ledger.odd_types WHERE id = 1")
        .fetch_one(&target_pool)
        .await
        .unwrap();
    assert_eq!(note, "Zoë's €5 — ünïcode");
    target_pool.close().await;

    // The target now holds data: a second restore needs --force, and then replaces it.
    match backups.restore(&pool, m.id, &target.url, false).await {
        Err(BackupError::NotEmpty(name)) => assert!(target.url.ends_with(&name)),
        other => panic!("restoring over data without force: {other:?}"),
    }
    let target_pool = db::connect(&target.url, 1).await.unwrap();
    sqlx::query("DELETE FROM ledger.transfers")
        .execute(&target_pool)
        .await
        .unwrap();
    sqlx::query("UPDATE ledger.accounts SET balance = 1 WHERE id = 1")
        .execute(&target_pool)
        .await
        .unwrap();
    target_pool.close().await;
    backups.restore(&pool, m.id, &target.url, true).await.unwrap();
    assert_eq!(sum_and_count(&target.url).await, (500_000, 500, 0));
}

#[tokio::test]
async fn the_restore_drill_records_verified_and_a_tampered_file_is_refused_before_restoring() {
    let (redis, db, dir) = (PrivateRedis::start(), TestDb::create().await, Dir::new());
    let (key, _) = backup::keygen();
    let config = with_backups(config(&redis, &db), BackupStore::Local(dir.0.clone()), &key);
    let pool = db.pool().await;
    seed(&pool, 200).await;
    let backups = Backups::from_config(&config);
    let m = backups.take(&pool).await.unwrap();

    let (id, result) = backups.verify(&pool, None).await.unwrap();
    assert_eq!(id, m.id, "with no id the drill takes the newest backup");
    result.unwrap();
    let m = backup::get(&pool, id).await.unwrap();
    assert_eq!(m.verify_status.as_deref(), Some("verified"));
    assert!(m.verified_at.is_some());

    // One flipped byte in the middle of the file.
    let path = dir.0.join(&m.location);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let target = empty_db().await;
    match backups.restore(&pool, m.id, &target.url, false).await {
        Err(e @ BackupError::Checksum { .. }) => assert!(e.to_string().contains("checksum mismatch"), "{e}"),
        other => panic!("a tampered file must be refused: {other:?}"),
    }
    let (_, result) = backups.verify(&pool, Some(m.id)).await.unwrap();
    assert!(matches!(result, Err(BackupError::Checksum { .. })), "{result:?}");
    let m = backup::get(&pool, m.id).await.unwrap();
    assert_eq!(m.verify_status.as_deref(), Some("failed"));
    assert!(m.verify_error.unwrap().contains("checksum mismatch"));

    // Tampering that also rewrites the recorded checksum is caught by age's authentication,
    // and the single-transaction restore leaves the target empty.
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    sqlx::query("UPDATE backups SET sha256 = $2 WHERE id = $1")
        .bind(m.id)
        .bind(sha)
        .execute(&pool)
        .await
        .unwrap();
    match backups.restore(&pool, m.id, &target.url, false).await {
        Err(BackupError::Decrypt(_) | BackupError::Restore { .. }) => {}
        other => panic!("an altered ciphertext must not restore: {other:?}"),
    }
    let target_pool = db::connect(&target.url, 1).await.unwrap();
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'ledger')")
        .fetch_one(&target_pool)
        .await
        .unwrap();
    target_pool.close().await;
    assert_eq!(tables, 0, "nothing of a failed restore stays");
}

#[tokio::test]
async fn a_wrong_key_is_refused_with_a_clear_error_and_nothing_restored() {
    let (redis, db, dir) = (PrivateRedis::start(), TestDb::create().await, Dir::new());
    let ((key, _), (other_key, _)) = (backup::keygen(), backup::keygen());
    let base = config(&redis, &db);
    let pool = db.pool().await;
    seed(&pool, 10).await;
    let m = Backups::from_config(&with_backups(base.clone(), BackupStore::Local(dir.0.clone()), &key))
        .take(&pool)
        .await
        .unwrap();
    let wrong = Backups::from_config(&with_backups(base, BackupStore::Local(dir.0.clone()), &other_key));
    let target = empty_db().await;
    let err = wrong.restore(&pool, m.id, &target.url, false).await.unwrap_err();
    assert!(matches!(err, BackupError::WrongKey), "{err:?}");
    assert!(err.to_string().contains("wrong key"), "{err}");
    assert!(pg_is_empty(&target.url).await);
}

async fn pg_is_empty(url: &str) -> bool {
    backup::pg::is_empty(url).await.unwrap()
}

#[tokio::test]
async fn a_backup_taken_during_concurrent_transfers_restores_a_consistent_snapshot() {
    let (redis, db, dir) = (PrivateRedis::start(), TestDb::create().await, Dir::new());
    let (key, _) = backup::keygen();
    let config = with_backups(config(&redis, &db), BackupStore::Local(dir.0.clone()), &key);
    let pool = db::connect(&db.url, 8).await.unwrap();
    seed(&pool, 100).await;
    let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let writers: Vec<_> = (0..4i64)
        .map(|w| {
            let (pool, stop, done) = (pool.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    i += 7;
                    let (from, to, amount) = (i % 100 + 1, (i * 13) % 100 + 1, i % 50 + 1);
                    if from == to {
                        continue;
                    }
                    // Each transfer moves money and records it in one transaction: a snapshot
                    // between its statements would break the invariants checked below.
                    let mut tx = pool.begin().await.unwrap();
                    sqlx::query("UPDATE ledger.accounts SET balance = balance - $2 WHERE id = $1")
                        .bind(from)
                        .bind(amount)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    sqlx::query("UPDATE ledger.accounts SET balance = balance + $2 WHERE id = $1")
                        .bind(to)
                        .bind(amount)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    sqlx::query("INSERT INTO ledger.transfers (from_id, to_id, amount) VALUES ($1, $2, $3)")
                        .bind(from)
                        .bind(to)
                        .bind(amount)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    wait_for("transfers to be under way", Duration::from_secs(10), || async {
        (done.load(Ordering::Relaxed) > 20).then_some(())
    })
    .await;
    let before = done.load(Ordering::Relaxed);
    let m = Backups::from_config(&config).take(&pool).await.unwrap();
    let during = done.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(during > 0, "transfers committed while the backup ran");

    let target = empty_db().await;
    Backups::from_config(&config)
        .restore(&pool, m.id, &target.url, false)
        .await
        .unwrap();
    let (sum, accounts, transfers) = sum_and_count(&target.url).await;
    assert_eq!(
        (sum, accounts),
        (100_000, 100),
        "money is conserved in the restored snapshot"
    );
    assert_eq!(transfers, m.tables.as_ref().unwrap().0["ledger.transfers"].rows);
    // Every account's balance is explained by the transfers in the same snapshot.
    let target_pool = db::connect(&target.url, 1).await.unwrap();
    let unexplained: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ledger.accounts a WHERE a.balance <> 1000
            - coalesce((SELECT sum(amount) FROM ledger.transfers WHERE from_id = a.id), 0)
            + coalesce((SELECT sum(amount) FROM ledger.transfers WHERE to_id = a.id), 0)",
    )
    .fetch_one(&target_pool)
    .await
    .unwrap();
    target_pool.close().await;
    assert_eq!(unexplained, 0);
    let now_transfers = sum_and_count(&db.url).await.2;
    assert!(now_transfers > transfers, "the source kept moving after the snapshot");
}

#[tokio::test]
async fn backups_go_to_an_s3_compatible_store_and_verify_from_it() {
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let s3 = S3Server::start("finance-backups").await;
    let (key, _) = backup::keygen();
    let store = BackupStore::S3 {
        bucket: "finance-backups".into(),
        endpoint: Some(s3.endpoint()),
        region: "us-east-1".into(),
        prefix: "prod/db".into(),
        credentials: Some(("test-key".into(), SecretString::from("test-secret"))),
    };
    let config = with_backups(config(&redis, &db), store, &key);
    let pool = db.pool().await;
    seed(&pool, 300).await;
    let backups = Backups::from_config(&config);
    let m = backups.take(&pool).await.unwrap();
    assert_eq!(m.store, "s3://finance-backups/prod/db");
    assert!(m.location.starts_with("prod/db/"), "{}", m.location);
    // The object is there, read straight from the server over HTTP.
    let object = reqwest::get(format!("{}/finance-backups/{}", s3.endpoint(), m.location))
        .await
        .unwrap();
    assert!(object.status().is_success());
    let body = object.bytes().await.unwrap();
    assert_eq!(body.len() as i64, m.size_bytes.unwrap());
    assert!(body.starts_with(b"age-encryption.org/v1"));

    let (_, result) = backups.verify(&pool, Some(m.id)).await.unwrap();
    result.unwrap();
    // Two more the same day: retention keeps the newest of the day and the newest verified.
    let second = backups.take(&pool).await.unwrap();
    let third = backups.take(&pool).await.unwrap();
    let store = backups.store().await.unwrap();
    let pruned = backups.prune(&pool, &store).await.unwrap();
    assert_eq!(pruned, vec![second.id]);
    assert!(!store.exists(&second.location).await.unwrap());
    assert!(store.exists(&m.location).await.unwrap() && store.exists(&third.location).await.unwrap());
    let second = backup::get(&pool, second.id).await.unwrap();
    assert!(second.deleted_at.is_some());
    assert_eq!(
        second.deleted_reason.as_deref(),
        Some("retention: 7 daily, 4 weekly, 12 monthly")
    );
    let err = backups
        .restore(&pool, second.id, &empty_db().await.url, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("retention deleted its file"), "{err}");
}

#[tokio::test]
async fn a_missing_pg_dump_or_an_unknown_role_fails_loudly_and_is_recorded() {
    let (redis, db, dir) = (PrivateRedis::start(), TestDb::create().await, Dir::new());
    let (key, _) = backup::keygen();
    let mut config = with_backups(config(&redis, &db), BackupStore::Local(dir.0.clone()), &key);
    let pool = db.pool().await;

    config.backup.pg_bindir = Some("/nonexistent/postgresql/bin".into());
    let err = Backups::from_config(&config).take(&pool).await.unwrap_err();
    assert!(matches!(err, BackupError::Tool(_)), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/postgresql/bin/pg_dump"), "{err}");

    config.backup.pg_bindir = None;
    config.backup.key = None;
    let err = Backups::from_config(&config).take(&pool).await.unwrap_err();
    assert!(err.to_string().contains("NIGHTSHIFT_BACKUP_KEY is not set"), "{err}");

    // Trust authentication here means a wrong password cannot be shown; a role that does not
    // exist is the same failure to authenticate.
    let mut bad = config.clone();
    bad.backup.key = Some(SecretString::from(key.clone()));
    bad.database_url = db.url.replacen("postgres@", "no_such_role:secret@", 1);
    let err = Backups::from_config(&bad).take(&pool).await.unwrap_err();
    assert!(err.to_string().contains("no_such_role"), "{err}");
    assert!(
        !err.to_string().contains("secret"),
        "the password is never in the error: {err}"
    );

    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM backups")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "nothing was started, so nothing is recorded as a backup");
}

#[tokio::test]
async fn the_nightly_jobs_back_up_then_drill_and_a_failed_drill_e_mails_the_operators() {
    let (redis, db, dir) = (PrivateRedis::start(), TestDb::create().await, Dir::new());
    let (key, _) = backup::keygen();
    let mut config = with_backups(config(&redis, &db), BackupStore::Local(dir.0.clone()), &key);
    config.operator_emails = vec!["oncall@example.com".into()];
    let pool = db.pool().await;
    seed(&pool, 50).await;
    let app = App::start(&config, true).await;
    let token = token(&[Scope::JobsWrite, Scope::JobsRead, Scope::Admin]);

    let id = app
        .enqueue_id(&token, json!({"kind": "backup.run", "payload": {}}))
        .await;
    let done = app.wait_state(&token, &id, "succeeded", Duration::from_secs(60)).await;
    let backup_id = done["result"]["backup_id"].as_str().unwrap().to_string();
    let id = app
        .enqueue_id(&token, json!({"kind": "backup.verify", "payload": {}}))
        .await;
    let done = app.wait_state(&token, &id, "succeeded", Duration::from_secs(60)).await;
    assert_eq!(done["result"]["backup_id"], backup_id.as_str());

    let m = backup::get(&pool, backup_id.parse().unwrap()).await.unwrap();
    let path = dir.0.join(&m.location);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let id = app
        .enqueue_id(
            &token,
            json!({"kind": "backup.verify", "payload": {"backup_id": backup_id}}),
        )
        .await;
    let dead = app.wait_state(&token, &id, "dead", Duration::from_secs(60)).await;
    assert!(dead["error"].as_str().unwrap().contains("checksum mismatch"), "{dead}");
    assert_eq!(dead["attempts"], 1, "a failed drill is an answer, not retried");
    let (recipient, subject): (String, String) =
        sqlx::query_as("SELECT recipient, subject FROM email_outbox WHERE template = 'backup_failed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(recipient, "oncall@example.com");
    assert_eq!(
        subject,
        format!("Nightshift: restore drill failed for backup {backup_id}")
    );
    app.stop().await;
}

#[tokio::test]
async fn the_cli_runs_lists_verifies_and_refuses_to_restore_over_data() {
    let (redis, db, dir) = (PrivateRedis::start(), TestDb::create().await, Dir::new());
    let (key, _) = backup::keygen();
    let config = config(&redis, &db);
    seed(&db.pool().await, 20).await;
    let dir_s = dir.0.to_string_lossy().into_owned();
    let env = [
        ("NIGHTSHIFT_BACKUP_DIR", dir_s.as_str()),
        ("NIGHTSHIFT_BACKUP_KEY", key.as_str()),
    ];
    let cli = |args: &[&str]| Proc::spawn(args, &config, &env).wait_output();
    let (ok, log) = cli(&["backup", "run"]);
    assert!(ok, "{log}");
    let pool = db.pool().await;
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM backups WHERE status = 'succeeded'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (ok, log) = cli(&["backup", "verify"]);
    assert!(ok, "{log}");
    let (verify_status, actions): (Option<String>, Vec<String>) = (
        sqlx::query_scalar("SELECT verify_status FROM backups WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap(),
        sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap(),
    );
    assert_eq!(verify_status.as_deref(), Some("verified"));
    assert_eq!(actions, vec!["backup.run", "backup.verify"]);
    // The application database itself is not empty: restoring over it needs --force.
    let (ok, log) = cli(&["backup", "restore", &id.to_string(), "--into", &db.url]);
    assert!(!ok);
    assert!(log.contains("is not empty; pass --force"), "{log}");
}

#[tokio::test]
async fn a_backup_whose_process_died_is_marked_failed_by_the_next_one() {
    let (redis, db, dir) = (PrivateRedis::start(), TestDb::create().await, Dir::new());
    let (key, _) = backup::keygen();
    let config = with_backups(config(&redis, &db), BackupStore::Local(dir.0.clone()), &key);
    let pool = db.pool().await;
    // What a worker killed mid-dump leaves: a row still `running`, and no lock held.
    let dead = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO backups (id, status, store, location, database) VALUES ($1, 'running', 'file:///gone', 'x', 'db')",
    )
    .bind(dead)
    .execute(&pool)
    .await
    .unwrap();
    let m = Backups::from_config(&config).take(&pool).await.unwrap();
    assert_eq!(m.status, "succeeded");
    let dead = backup::get(&pool, dead).await.unwrap();
    assert_eq!(dead.status, "failed");
    assert!(dead.error.unwrap().starts_with("interrupted"));
    assert!(dead.finished_at.is_some());
}

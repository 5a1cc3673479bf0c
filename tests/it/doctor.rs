//! `nightshift doctor` against real servers: a sound set-up passes with its warnings named, and
//! each broken part fails with its fix and a non-zero exit status.
use std::process::Command;

use crate::support::*;

/// Runs `nightshift doctor` with `env`; its exit code and output.
fn doctor(env: &[(&str, String)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .arg("doctor")
        .env_remove("NIGHTSHIFT_MASTER_KEY")
        .env_remove("NIGHTSHIFT_BACKUP_KEY")
        .env_remove("NIGHTSHIFT_JWT_SECRET")
        .env("RUST_LOG", "error")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run nightshift doctor");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn line<'a>(out: &'a str, start: &str, containing: &str) -> Option<&'a str> {
    out.lines().find(|l| l.starts_with(start) && l.contains(containing))
}

#[tokio::test]
async fn doctor_passes_a_sound_set_up_and_fails_each_broken_part_with_its_fix() {
    // Durable, so its append-only file lives in a directory of its own.
    let redis = PrivateRedis::start_durable();
    let (db, empty) = (TestDb::create().await, TestDb::empty().await);
    let smtp = SmtpSink::start();
    let sound = vec![
        ("REDIS_URL", redis.url()),
        ("DATABASE_URL", db.url.clone()),
        ("NIGHTSHIFT_SMTP_URL", format!("smtp://127.0.0.1:{}", smtp.port)),
        ("NIGHTSHIFT_JWT_SECRET", "s".repeat(48)),
    ];
    let (code, out) = doctor(&sound);
    assert_eq!(code, 0, "{out}");
    for (start, found) in [
        ("ok   redis", "maxmemory-policy noeviction"),
        ("ok   redis", "append-only file on"),
        ("ok   postgres", "migrations applied"),
        ("ok   postgres", "can dump this server"),
        ("ok   smtp", "answers EHLO"),
        ("warn keys", "never rotated"),
        ("warn keys", "no NIGHTSHIFT_BACKUP_KEY"),
        ("ok   clock", "redis is"),
        ("ok   clock", "postgres is"),
    ] {
        assert!(line(&out, start, found).is_some(), "no `{start} … {found}` in:\n{out}");
    }
    assert!(!out.contains(&"s".repeat(48)), "a secret was printed");

    // Broken: Redis may evict, the database is not migrated, nothing listens for SMTP, no keys.
    let mut conn = nightshift_queue::connect_redis(&redis.url()).await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut conn)
        .await
        .unwrap();
    let broken = vec![
        ("REDIS_URL", redis.url()),
        ("DATABASE_URL", empty.url.clone()),
        ("NIGHTSHIFT_SMTP_URL", format!("smtp://127.0.0.1:{}", free_port())),
    ];
    let (code, out) = doctor(&broken);
    assert_eq!(code, 1, "{out}");
    for (found, fix) in [
        ("maxmemory-policy allkeys-lru", "noeviction"),
        ("no migrations applied", "nightshift migrate"),
        ("smtp://127.0.0.1", "NIGHTSHIFT_SMTP_URL"),
        (
            "neither NIGHTSHIFT_MASTER_KEY nor NIGHTSHIFT_JWT_SECRET",
            "NIGHTSHIFT_MASTER_KEY",
        ),
    ] {
        let failed = out.lines().position(|l| l.starts_with("FAIL") && l.contains(found));
        let fix_line = failed.and_then(|i| out.lines().nth(i + 1));
        assert!(
            fix_line.is_some_and(|l| l.contains("fix:") && l.contains(fix)),
            "no failure `{found}` with a fix naming `{fix}` in:\n{out}"
        );
    }
    // Nothing answers at all: one failure each, no hang.
    let (code, out) = doctor(&[
        ("REDIS_URL", format!("redis://127.0.0.1:{}", free_port())),
        (
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/x", free_port()),
        ),
    ]);
    assert_eq!(code, 1);
    assert!(line(&out, "FAIL redis", "cannot connect").is_some(), "{out}");
    assert!(line(&out, "FAIL postgres", "").is_some(), "{out}");
}

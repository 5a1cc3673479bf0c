//! The scale-out benchmark's short mode: two API processes, two schedulers and one, two, then
//! three worker processes on one Redis and one PostgreSQL lose no job and duplicate no effect.
use crate::support::*;

#[tokio::test]
async fn two_apis_two_schedulers_and_up_to_three_workers_lose_and_duplicate_nothing() {
    // Up to seven `nightshift` processes: alone in its binary until the tests were one, now
    // kept from overlapping the other heavy tests (support::serial).
    let _heavy = heavy().await;
    let (redis, db) = (PrivateRedis::start(), TestDb::create().await);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .args([
            "bench-scale",
            "--jobs",
            "300",
            "--workers",
            "1,2,3",
            "--concurrency",
            "8",
        ])
        .env("REDIS_URL", redis.url())
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for workers in 1..=3 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{workers} worker(s):")))
            .unwrap_or_else(|| panic!("no line for {workers} workers:\n{stdout}"));
        assert!(line.contains("(300 jobs in"), "{line}");
        assert!(line.ends_with("lost 0, duplicate effects 0"), "{line}");
    }
}

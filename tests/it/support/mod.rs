//! The fixtures the integration tests share, by concern: the services a test starts for itself
//! (`redis`, `postgres`, `mail`, `s3`, `webhook`), the platform in this process or as real
//! `nightshift` processes (`app`, driven over HTTP with `http`), and the dashboard's browser
//! (`browser`). Each test starts its own: a private `redis-server` per test on a free port (so
//! tests may kill and restart it), a fresh PostgreSQL database per test. `serial` keeps the
//! tests that load the whole machine from running beside one another.

mod app;
pub mod browser;
mod effects;
mod http;
mod mail;
mod otlp;
mod postgres;
mod redis;
mod s3;
mod serial;
mod webhook;

use std::{
    net::TcpListener,
    time::{Duration, Instant},
};

pub use app::{App, Proc, SECRET, cli, config, config_at, keys, queue, queue_config, restart_redis_without, token};
pub use effects::{db_now, effects, effects_applied, runs, three_second_leases, wait_succeeded, workers_up};
pub use http::{no_redirects, sign_in};
pub use mail::SmtpSink;
pub use nightshift_tools::proxy::LatencyProxy;
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use postgres::{PrivatePostgres, TestDb, pg_admin_url};
pub use redis::{PrivateRedis, RedisCluster};
pub use s3::S3Server;
pub use serial::heavy;
pub use webhook::{StreamingReceiver, WebhookReceiver};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `check` until it yields a value or the deadline passes (then panics with `what`).
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll_until(within, check).await {
        Some(v) => v,
        None => panic!("timed out after {within:?} waiting for {what}"),
    }
}

/// Polls `check` until it yields a value, or `None` once the deadline passed: for callers that
/// report more than a message on a timeout.
pub async fn poll_until<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    loop {
        tick.tick().await;
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
    }
}

/// Waits until something accepts connections on the port (a server the test just spawned).
fn wait_for_port(port: u16, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on port {port}");
        std::thread::yield_now();
    }
}

/// The python of the venv scripts/test.sh makes with the tests' servers (aiosmtpd, moto).
pub fn test_python() -> String {
    std::env::var("NIGHTSHIFT_TEST_PYTHON").unwrap_or_else(|_| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.nightshift/venv/bin/python");
        if std::path::Path::new(venv).exists() {
            venv.into()
        } else {
            "python3".into()
        }
    })
}

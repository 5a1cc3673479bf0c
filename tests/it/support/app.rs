//! The platform under test: its configuration and tokens, the API and workers in this process
//! (`App`), and `nightshift` subcommands as real processes (`Proc`).

use std::{
    process::{Child, Command},
    time::Duration,
};

use nightshift_common::{
    Config,
    auth::{Scope, TokenKeys},
    config::{ApiLimits, BackupConfig, BackupStore, MailConfig},
    db,
};
use nightshift_queue::{Queue, QueueConfig, connect_redis};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::{PrivateRedis, TestDb};

pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256-0123456789";

/// Short lease and sweeps, so crash recovery happens in test time.
pub fn queue_config() -> QueueConfig {
    QueueConfig {
        prefix: "nstest".into(),
        lease: Duration::from_secs(1),
        reap_interval: Duration::from_millis(250),
        heartbeat_interval: Duration::from_secs(1),
        finished_ttl: Duration::from_secs(3600),
        idempotency_ttl: Duration::from_secs(3600),
        fetch_batch: 256,
        sweep_batch: 1000,
        idle_poll: Duration::from_secs(1),
        rates: [("email.send".into(), nightshift_queue::Rate::per_second(1000, 1000))].into(),
    }
}

pub fn config(redis: &PrivateRedis, db: &TestDb) -> Config {
    config_at(redis.url(), db)
}

/// The test configuration for any REDIS_URL (a cluster's, say).
pub fn config_at(redis_url: String, db: &TestDb) -> Config {
    Config {
        redis_url,
        database_url: db.url.clone(),
        api_addr: "127.0.0.1:0".parse().unwrap(),
        ops_addr: None,
        jwt_secret: Some(SecretString::from(SECRET)),
        queue: queue_config(),
        concurrency: 16,
        allow_eviction: false,
        history: true,
        shutdown_timeout: Duration::from_secs(10),
        mail: MailConfig {
            // Nothing listens on port 9: tests that send mail point this at their own sink.
            smtp_url: "smtp://127.0.0.1:9".into(),
            smtp_username: None,
            smtp_password: None,
            smtp_timeout: Duration::from_secs(5),
            from: "Nightshift Tests <tests@nightshift.test>".into(),
        },
        // High enough for every test but the rate-limit one, which lowers them.
        api_limits: ApiLimits {
            per_client: (1_000_000, 100_000),
            per_ip: (1_000_000, 100_000),
            auth_failures: (1_000_000, 100_000),
            open_batches: 1_000,
        },
        cors_origins: vec!["https://app.example.com".into()],
        master_key: None,
        key_rotation: Duration::from_secs(90 * 86_400),
        key_grace: Duration::from_secs(30 * 86_400),
        token_max_ttl: Duration::from_secs(30 * 86_400),
        // Backup tests give each test its own directory and key.
        backup: BackupConfig {
            store: BackupStore::Local(std::env::temp_dir().join("nightshift-test-backups")),
            key: None,
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 12,
            pg_bindir: None,
            scratch_url: None,
            work_dir: std::env::temp_dir(),
        },
        operator_emails: Vec::new(),
        // The tests' webhook receivers listen on 127.0.0.1; one test turns this off.
        webhook_allow_private: true,
        // The tests' load is mostly `noop` and `diag.*`.
        diagnostics: true,
        server: nightshift_common::config::ServerLimits::default(),
        public_hosts: Vec::new(),
        // Short, so tests that wait for the projection a change queues wait little.
        cashflow_debounce: Duration::from_secs(1),
        batch_orphan_age: Duration::from_secs(600),
    }
}

pub fn keys() -> TokenKeys {
    TokenKeys::from_secret(&SecretString::from(SECRET))
}

pub fn token(scopes: &[Scope]) -> String {
    keys().issue("test-client", scopes, Duration::from_secs(600)).unwrap()
}

pub async fn queue(redis: &PrivateRedis, name: &str) -> Queue {
    Queue::with_connection(connect_redis(&redis.url()).await.unwrap(), name, queue_config())
}

/// Restarts a durable Redis without job `lost`, as if its writes never reached the append-only
/// file (`everysec` on a busy disk), and resumes the paused queue `q` once the restarted server
/// takes commands (it answers LOADING while it replays its file). The queue, reconnected.
pub async fn restart_redis_without(redis: &mut PrivateRedis, q: &Queue, lost: &str) -> Queue {
    let _: () = redis::cmd("DEL")
        .arg(q.job_key(lost))
        .query_async(&mut q.connection())
        .await
        .unwrap();
    redis.restart();
    let q = queue(redis, q.name()).await;
    crate::support::wait_for(
        "the restarted Redis to take commands",
        Duration::from_secs(10),
        || async { q.resume().await.ok() },
    )
    .await;
    q
}

/// API and workers in this process, stopped when dropped.
pub struct App {
    pub base: String,
    pub http: reqwest::Client,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl App {
    pub async fn start(config: &Config, with_workers: bool) -> Self {
        let stop = CancellationToken::new();
        // With a master key the API signs and verifies with the keyring, as `nightshift api` does.
        let keys = match &config.master_key {
            None => keys(),
            Some(hex) => {
                let master = nightshift_common::keyring::MasterKey::from_hex(hex).unwrap();
                let pool = db::connect(&config.database_url, 1).await.unwrap();
                nightshift_common::keyring::token_keys(&pool, &master).await.unwrap()
            }
        };
        let state = nightshift_api::state(config, keys).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut tasks = vec![tokio::spawn({
            let s = stop.clone();
            async move {
                nightshift_api::serve(listener, state, s.cancelled_owned())
                    .await
                    .unwrap();
            }
        })];
        if with_workers {
            let (c, s) = (config.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                nightshift_workers::run(c, s.cancelled_owned()).await.unwrap();
            }));
        }
        App {
            base,
            http: reqwest::Client::new(),
            stop,
            tasks,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Runs an operator command of the `nightshift` binary against `config`'s Redis, database and
/// key prefix: whether it succeeded, and what it printed on stdout.
pub fn cli(args: &[&str], config: &Config) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nightshift"))
        .args(args)
        .env("REDIS_URL", &config.redis_url)
        .env("DATABASE_URL", &config.database_url)
        .env("NIGHTSHIFT_QUEUE_PREFIX", &config.queue.prefix)
        .env("RUST_LOG", "error")
        .output()
        .expect("run the nightshift binary");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A `nightshift` subcommand as a real process (for SIGKILL / SIGTERM tests).
pub struct Proc {
    pub child: Child,
    log: std::path::PathBuf,
}

impl Proc {
    pub fn spawn(args: &[&str], config: &Config, extra_env: &[(&str, &str)]) -> Self {
        Self::spawn_via(&[], args, config, extra_env)
    }

    /// Runs the binary with its wall clock `offset` seconds off (libfaketime preloaded;
    /// monotonic timers stay real), as a replica on a skewed host would be.
    pub fn spawn_skewed(offset: &str, args: &[&str], config: &Config, extra_env: &[(&str, &str)]) -> Self {
        // Preloaded rather than through the `faketime` wrapper, which would get our signals.
        let lib = std::fs::read_dir("/usr/lib")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("faketime/libfaketimeMT.so.1"))
            .find(|p| p.exists())
            .expect("libfaketime (scripts/test.sh installs Debian's faketime)");
        let lib = lib.to_string_lossy().into_owned();
        let mut env = extra_env.to_vec();
        env.extend([
            ("LD_PRELOAD", lib.as_str()),
            ("FAKETIME", offset),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ]);
        Self::spawn_via(&[], args, config, &env)
    }

    fn spawn_via(wrapper: &[&str], args: &[&str], config: &Config, extra_env: &[(&str, &str)]) -> Self {
        let q = &config.queue;
        // A file, not a pipe: a pipe nobody reads would block a chatty child.
        let log = std::env::temp_dir().join(format!("nightshift-test-{}.log", uuid::Uuid::new_v4().simple()));
        let log_file = std::fs::File::create(&log).unwrap();
        let bin = env!("CARGO_BIN_EXE_nightshift");
        let mut cmd = match wrapper.split_first() {
            None => Command::new(bin),
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin);
                c
            }
        };
        let child = cmd
            .args(args)
            .env("REDIS_URL", &config.redis_url)
            .env("DATABASE_URL", &config.database_url)
            .env("NIGHTSHIFT_JWT_SECRET", SECRET)
            .env("NIGHTSHIFT_DIAGNOSTICS", "1")
            .env("NIGHTSHIFT_QUEUE_PREFIX", &q.prefix)
            .env("NIGHTSHIFT_LEASE_SECS", q.lease.as_secs_f64().to_string())
            .env(
                "NIGHTSHIFT_REAP_INTERVAL_SECS",
                q.reap_interval.as_secs_f64().to_string(),
            )
            .env("NIGHTSHIFT_CONCURRENCY", config.concurrency.to_string())
            .env("RUST_LOG", "info")
            .envs(extra_env.iter().copied())
            // Both streams: what a process prints (a token, say) is as public as what it logs.
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("spawn nightshift (faketime for skewed replicas: scripts/test.sh installs it)");
        Proc { child, log }
    }

    /// `nightshift all` (API, workers, scheduler) on a free port, once it answers: the process
    /// and its address (`127.0.0.1:port`).
    pub async fn spawn_all(config: &Config, extra_env: &[(&str, &str)]) -> (Self, String) {
        Self::spawn_serving(&["all"], config, extra_env).await
    }

    /// A subcommand that serves the API (`all --demo`, say) on a free port, once it answers.
    pub async fn spawn_serving(args: &[&str], config: &Config, extra_env: &[(&str, &str)]) -> (Self, String) {
        Self::serving(extra_env, |env| Self::spawn(args, config, env)).await
    }

    /// [`Proc::spawn_serving`] with the wall clock `offset` off, as [`Proc::spawn_skewed`].
    pub async fn spawn_serving_skewed(
        offset: &str,
        args: &[&str],
        config: &Config,
        extra_env: &[(&str, &str)],
    ) -> (Self, String) {
        Self::serving(extra_env, |env| Self::spawn_skewed(offset, args, config, env)).await
    }

    async fn serving(extra_env: &[(&str, &str)], spawn: impl FnOnce(&[(&str, &str)]) -> Self) -> (Self, String) {
        let addr = format!("127.0.0.1:{}", super::free_port());
        let mut env = vec![("NIGHTSHIFT_API_ADDR", addr.as_str())];
        env.extend_from_slice(extra_env);
        let proc = spawn(&env);
        let http = reqwest::Client::new();
        super::wait_for("the platform to answer", Duration::from_secs(60), || async {
            http.get(format!("http://{addr}/health/live"))
                .send()
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        (proc, addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{sig} failed");
    }

    /// Waits for exit and returns (success, stdout and stderr).
    pub fn wait_output(&mut self) -> (bool, String) {
        let status = self.child.wait().unwrap();
        (status.success(), std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

//! Test harness: a private `redis-server` per test on a free port (so tests may kill and
//! restart it), a fresh PostgreSQL database per test, and the platform started in-process or
//! as real `nightshift` processes.
#![allow(dead_code)]

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
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

pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256-0123456789";

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

/// A `redis-server` on `port`, without persistence, with `extra` arguments on top.
fn redis_server(port: u16, extra: &[&str]) -> Child {
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be on PATH (scripts/test.sh installs it)")
}

pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Self {
        let mut r = PrivateRedis {
            port: free_port(),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let child = redis_server(self.port, &extra);
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10), "redis-server");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A local three-master Redis Cluster made of `redis-server` processes on free ports.
pub struct RedisCluster {
    pub ports: Vec<u16>,
    dir: std::path::PathBuf,
    children: Vec<Child>,
}

impl RedisCluster {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("nightshift-cluster-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let children = ports
            .iter()
            .map(|p| {
                let config_file = format!("nodes-{p}.conf");
                let dir = dir.to_string_lossy();
                redis_server(
                    *p,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &config_file,
                        "--dir",
                        &dir,
                    ],
                )
            })
            .collect();
        for p in &ports {
            wait_for_port(*p, Duration::from_secs(10), "a cluster node");
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli (scripts/test.sh installs redis-tools)");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = RedisCluster { ports, dir, children };
        // Every node must agree the cluster is up before clients use it.
        let deadline = Instant::now() + Duration::from_secs(20);
        for p in &cluster.ports {
            loop {
                let info = Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "cluster", "info"])
                    .output()
                    .unwrap();
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                // Each check is a redis-cli process: that paces the loop.
                assert!(Instant::now() < deadline, "the cluster did not come up");
            }
        }
        cluster
    }

    /// REDIS_URL for the cluster: every node, comma-separated.
    pub fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The port of the node serving `key`'s slot: the one that does not answer MOVED.
    pub fn node_of(&self, key: &str) -> u16 {
        *self
            .ports
            .iter()
            .find(|p| {
                let out = Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "exists", key])
                    .output()
                    .unwrap();
                !String::from_utf8_lossy(&out.stdout).contains("MOVED")
            })
            .expect("some node serves every slot")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct TestDb {
    pub url: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let admin = std::env::var("NIGHTSHIFT_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("ns_test_{}", uuid::Uuid::new_v4().simple());
        let url = db::with_database(&admin, &name).unwrap();
        db::migrate(&url)
            .await
            .expect("PostgreSQL must be reachable at NIGHTSHIFT_TEST_PG_URL");
        TestDb { url }
    }

    /// A database on another server (a `PrivatePostgres`), migrated.
    pub async fn at(url: String) -> Self {
        db::migrate(&url).await.expect("the private PostgreSQL answers");
        TestDb { url }
    }

    pub async fn pool(&self) -> sqlx::PgPool {
        db::connect(&self.url, 5).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let url = self.url.clone();
        // Drop runs outside async; a short-lived runtime on its own thread removes our database.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(db::drop_database(&url))
        })
        .join();
    }
}

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
            rate_per_domain: 1000,
            rate_burst: 1000,
        },
        // High enough for every test but the rate-limit one, which lowers them.
        api_limits: ApiLimits {
            per_client: (1_000_000, 100_000),
            per_ip: (1_000_000, 100_000),
            auth_failures: (1_000_000, 100_000),
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

    pub async fn enqueue(
        &self,
        token: &str,
        body: serde_json::Value,
        idempotency_key: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/v1/jobs", self.base))
            .bearer_auth(token)
            .json(&body);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().await.unwrap()
    }

    /// Enqueues and returns the new job's id, asserting the 202.
    pub async fn enqueue_id(&self, token: &str, body: serde_json::Value) -> String {
        let resp = self.enqueue(token, body, None).await;
        assert_eq!(resp.status(), 202);
        resp.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn status(&self, token: &str, id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/v1/jobs/{id}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Waits until the job reaches `state`; returns its status document.
    pub async fn wait_state(&self, token: &str, id: &str, state: &str, within: Duration) -> serde_json::Value {
        wait_for(&format!("job {id} to be {state}"), within, || async {
            let r = self.status(token, id).await;
            if !r.status().is_success() {
                return None;
            }
            let v: serde_json::Value = r.json().await.ok()?;
            (v["state"] == state).then_some(v)
        })
        .await
    }

    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
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

/// The S3-compatible store of the backup tests: moto's server on a free port, with one bucket.
/// It keeps objects in memory, so each test's is gone with it.
pub struct S3Server {
    pub port: u16,
    child: Child,
}

impl S3Server {
    pub async fn start(bucket: &str) -> Self {
        let port = free_port();
        let child = Command::new(test_python())
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python with moto (scripts/test.sh installs it)");
        let server = S3Server { port, child };
        wait_for_port(port, Duration::from_secs(30), "the S3 server (moto)");
        reqwest::Client::new()
            .put(format!("{}/{bucket}", server.endpoint()))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("creating the test bucket");
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SMTP server of the e-mail tests: tests/it/support/smtp_sink.py (aiosmtpd) on a free port,
/// keeping each accepted message as JSON in its own directory. `reject*@` recipients get 550,
/// `busy*@` 451.
pub struct SmtpSink {
    pub port: u16,
    pub dir: std::path::PathBuf,
    child: Option<Child>,
}

impl SmtpSink {
    pub fn start() -> Self {
        let mut s = SmtpSink {
            port: free_port(),
            dir: std::env::temp_dir().join(format!("nightshift-smtp-{}", uuid::Uuid::new_v4().simple())),
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new(test_python())
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/smtp_sink.py"))
            .arg(self.port.to_string())
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python with aiosmtpd (scripts/test.sh installs it)");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(20), "the SMTP sink (aiosmtpd)");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real HTTP webhook receiver: records every request and answers with the status set.
pub struct WebhookReceiver {
    pub url: String,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
    /// Statuses to answer with, first to last; the last one repeats.
    pub statuses: std::sync::Arc<std::sync::Mutex<Vec<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start(statuses: &[u16]) -> Self {
        use std::sync::{Arc, Mutex};
        let requests: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
        let statuses = Arc::new(Mutex::new(statuses.to_vec()));
        let (r, s) = (requests.clone(), statuses.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let (r, s) = (r.clone(), s.clone());
                async move {
                    r.lock().unwrap().push((headers, body));
                    let mut s = s.lock().unwrap();
                    let code = if s.len() > 1 { s.remove(0) } else { s[0] };
                    axum::http::StatusCode::from_u16(code).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        WebhookReceiver {
            url,
            requests,
            statuses,
            task,
        }
    }

    pub fn received(&self) -> Vec<(axum::http::HeaderMap, String)> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A PostgreSQL server of the test's own (initdb on a free port, under a temp dir), for tests
/// that stop and restart it. As root it runs as the `postgres` user: PostgreSQL refuses root.
pub struct PrivatePostgres {
    pub port: u16,
    dir: std::path::PathBuf,
    bindir: std::path::PathBuf,
}

impl PrivatePostgres {
    pub fn start() -> Self {
        let bindir = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql (scripts/test.sh installs them)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max_by_key(|b| b.to_string_lossy().into_owned())
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = std::env::temp_dir().join(format!("ns-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let pg = PrivatePostgres {
            port: free_port(),
            dir,
            bindir,
        };
        if Self::as_root() {
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&pg.dir)
                .status()
                .unwrap();
            assert!(ok.success(), "chown of the cluster's directory");
        }
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        pg.start_again();
        pg
    }

    fn as_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bindir.join(tool);
        let mut cmd = if Self::as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).current_dir("/").output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"],
        );
    }

    /// Stops at once, as a crash would: no checkpoint, every connection cut.
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
        }));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

//! What every process is configured with. Reading it from the environment, with the checks
//! that name the variable at fault, is in `env`.
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use nightshift_queue::QueueConfig;
use secrecy::SecretString;

mod env;

/// Configuration from the environment, with local defaults. A bad value is an error that
/// names its variable.
#[derive(Debug, Clone)]
pub struct Config {
    pub redis_url: String,
    pub database_url: String,
    pub api_addr: SocketAddr,
    /// Where a worker or scheduler serves /health/live and /metrics; off when unset.
    pub ops_addr: Option<SocketAddr>,
    /// HS256 secret for API tokens; `None` when unset (only `all` may then generate one).
    pub jwt_secret: Option<SecretString>,
    pub queue: QueueConfig,
    /// Jobs running at once per queue in one worker process.
    pub concurrency: usize,
    pub allow_eviction: bool,
    pub history: bool,
    pub shutdown_timeout: Duration,
    pub mail: MailConfig,
    pub api_limits: ApiLimits,
    /// Browser origins allowed to call the API (CORS); none by default.
    pub cors_origins: Vec<String>,
    /// Seals the keyring; when set, tokens are signed by the keyring's rotating keys instead
    /// of NIGHTSHIFT_JWT_SECRET.
    pub master_key: Option<SecretString>,
    /// The active signing key is rotated once it is this old.
    pub key_rotation: Duration,
    /// How long a rotated-out key still verifies: at least the longest token lifetime.
    pub key_grace: Duration,
    /// The longest lifetime a token is issued with.
    pub token_max_ttl: Duration,
    pub backup: BackupConfig,
    /// Who hears about failed backups and restore drills.
    pub operator_emails: Vec<String>,
    /// Lets webhooks reach private, loopback and link-local addresses (local development).
    pub webhook_allow_private: bool,
    /// Diagnostic job kinds (`noop`, `diag.*`) may be enqueued through the API: tests,
    /// benchmarks and the chaos suite only.
    pub diagnostics: bool,
    /// How the API bounds slow and numerous clients.
    pub server: ServerLimits,
    /// The host names (with port, as browsers send `Host`) the API answers the dashboard on;
    /// empty: the API's own address and `localhost` on its port only.
    pub public_hosts: Vec<String>,
    /// A change to a user's finance data projects them this long after the last change in a
    /// row (a debounce per user); zero projects after every change.
    pub cashflow_debounce: Duration,
    /// A batch's job that no queue and no history knows this long after it was recorded was
    /// never pushed (the API stopped between the two): it is taken back from its batch.
    pub batch_orphan_age: Duration,
}

/// Connection limits of the HTTP server: what one slow or greedy client may hold.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// A connection must send its request headers within this time.
    pub header_read_timeout: Duration,
    /// A request must be answered within this time (408 otherwise).
    pub request_timeout: Duration,
    /// A connection that neither sends nor takes a byte for this long is closed (an idle
    /// keep-alive connection, a client that stalls mid-body).
    pub idle_timeout: Duration,
    /// A response the client does not take within this time is abandoned and the connection
    /// closed: a client that pipelines requests and never reads holds nothing for longer.
    pub write_timeout: Duration,
    /// Connections open at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Connections open at once from one address (IPv6: one /64); 0 = no per-address cap.
    /// Behind a proxy every client shares the proxy's address: set 0 there and cap per client
    /// at the proxy.
    pub max_connections_per_ip: usize,
}

impl ServerLimits {
    /// The operations listener's: probes and a scraper, never the public.
    pub fn ops() -> Self {
        ServerLimits {
            header_read_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(5),
            max_connections: 32,
            max_connections_per_ip: 0,
        }
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_connections_per_ip: 256,
        }
    }
}

/// Database backups: where they go, how they are sealed, how many are kept.
#[derive(Debug, Clone)]
pub struct BackupConfig {
    pub store: BackupStore,
    /// An age identity (`AGE-SECRET-KEY-1...`): backups are encrypted to its public half and
    /// restored with it. Backups refuse to run without one.
    pub key: Option<SecretString>,
    /// Grandfather-father-son retention: the newest backup of each of the last N days, ISO
    /// weeks and months is kept.
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    /// Where pg_dump and pg_restore are; PATH when unset.
    pub pg_bindir: Option<PathBuf>,
    /// A server where restore drills may create and drop scratch databases; the application
    /// database's server when unset.
    pub scratch_url: Option<String>,
    /// Downloads being checked before a restore.
    pub work_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub enum BackupStore {
    Local(PathBuf),
    S3 {
        bucket: String,
        /// For S3-compatible stores (MinIO, Ceph, R2...); AWS when unset.
        endpoint: Option<String>,
        region: String,
        prefix: String,
        /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; without them the instance's role.
        credentials: Option<(String, SecretString)>,
    },
}

/// API rate limits, per minute with a burst, shared by every API instance through Redis.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// Requests per client (token subject).
    pub per_client: (u32, u32),
    /// Requests per IP address, authenticated or not.
    pub per_ip: (u32, u32),
    /// Failed authentications per IP address: guessing tokens is slow.
    pub auth_failures: (u32, u32),
    /// Open (unsealed) batches one caller may hold at once: each waits for jobs and is looked
    /// at by the orphan sweep until sealed.
    pub open_batches: u32,
}

/// Outgoing e-mail. The URL carries no credentials (it may be logged); they come separately.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `smtp://host:port` (plain, for local sinks), `smtp://host:587?tls=required` (STARTTLS)
    /// or `smtps://host:465` (implicit TLS).
    pub smtp_url: String,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<SecretString>,
    pub smtp_timeout: Duration,
    pub from: String,
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/nightshift";

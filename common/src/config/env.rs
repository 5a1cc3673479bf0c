//! Reading the configuration from the environment: local defaults for what is unset, and an
//! error naming the variable for a value that is not usable.
use std::{net::SocketAddr, path::PathBuf, time::Duration};

use nightshift_queue::QueueConfig;
use secrecy::SecretString;

use super::{
    ApiLimits, BackupConfig, BackupStore, Config, ConfigError, DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, MailConfig,
    ServerLimits,
};

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError {
            var: name,
            problem: format!("`{v}` is not valid: {e}"),
        }),
    }
}

fn flag(name: &'static str) -> Result<bool, ConfigError> {
    match var(name).as_deref().map(str::trim) {
        None | Some("0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(other) => Err(ConfigError {
            var: name,
            problem: format!("`{other}` is not a boolean (use 1 or 0)"),
        }),
    }
}

fn backup_config() -> Result<BackupConfig, ConfigError> {
    let key = var("NIGHTSHIFT_BACKUP_KEY").map(SecretString::from);
    if let Some(k) = &key {
        use secrecy::ExposeSecret;
        if !k.expose_secret().trim().starts_with("AGE-SECRET-KEY-1") {
            return Err(ConfigError {
                var: "NIGHTSHIFT_BACKUP_KEY",
                problem: "must be an age identity (AGE-SECRET-KEY-1...); `nightshift backup keygen` makes one".into(),
            });
        }
    }
    let keep = |name: &'static str, default: u32| parse(name, default);
    let store = match var("NIGHTSHIFT_BACKUP_S3_BUCKET") {
        Some(bucket) => BackupStore::S3 {
            bucket,
            endpoint: var("NIGHTSHIFT_BACKUP_S3_ENDPOINT"),
            region: var("NIGHTSHIFT_BACKUP_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
            prefix: var("NIGHTSHIFT_BACKUP_S3_PREFIX").unwrap_or_else(|| "nightshift".into()),
            credentials: var("AWS_ACCESS_KEY_ID").zip(var("AWS_SECRET_ACCESS_KEY").map(SecretString::from)),
        },
        None => BackupStore::Local(
            var("NIGHTSHIFT_BACKUP_DIR")
                .unwrap_or_else(|| "/var/lib/nightshift/backups".into())
                .into(),
        ),
    };
    let config = BackupConfig {
        store,
        key,
        keep_daily: keep("NIGHTSHIFT_BACKUP_KEEP_DAILY", 7)?,
        keep_weekly: keep("NIGHTSHIFT_BACKUP_KEEP_WEEKLY", 4)?,
        keep_monthly: keep("NIGHTSHIFT_BACKUP_KEEP_MONTHLY", 12)?,
        pg_bindir: var("NIGHTSHIFT_PG_BINDIR").map(PathBuf::from),
        scratch_url: var("NIGHTSHIFT_BACKUP_SCRATCH_URL"),
        work_dir: var("NIGHTSHIFT_BACKUP_WORK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir),
    };
    if config.keep_daily == 0 {
        // The newest backup is the one a restore needs.
        return Err(ConfigError {
            var: "NIGHTSHIFT_BACKUP_KEEP_DAILY",
            problem: "must be at least 1".into(),
        });
    }
    Ok(config)
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let jwt_secret = var("NIGHTSHIFT_JWT_SECRET").map(SecretString::from);
        if let Some(s) = &jwt_secret {
            crate::auth::check_secret_strength(s).map_err(|problem| ConfigError {
                var: "NIGHTSHIFT_JWT_SECRET",
                problem,
            })?;
        }
        let days = |name: &'static str, default: u64| {
            let d = parse(name, default)?;
            if d == 0 || d > 3660 {
                return Err(ConfigError {
                    var: name,
                    problem: format!("`{d}` must be 1 to 3660 days"),
                });
            }
            Ok(Duration::from_secs(d * 86_400))
        };
        let master_key = var("NIGHTSHIFT_MASTER_KEY").map(SecretString::from);
        if let Some(k) = &master_key {
            crate::keyring::MasterKey::from_hex(k).map_err(|e| ConfigError {
                var: "NIGHTSHIFT_MASTER_KEY",
                problem: e.to_string(),
            })?;
        }
        let (key_grace, token_max_ttl) = (
            days("NIGHTSHIFT_KEY_GRACE_DAYS", 30)?,
            days("NIGHTSHIFT_TOKEN_MAX_TTL_DAYS", 30)?,
        );
        // A rotated-out key must outlive every token it signed, or rotation logs people out.
        if key_grace < token_max_ttl {
            return Err(ConfigError {
                var: "NIGHTSHIFT_KEY_GRACE_DAYS",
                problem: "must be at least NIGHTSHIFT_TOKEN_MAX_TTL_DAYS".into(),
            });
        }
        let defaults = QueueConfig::default();
        // Durations must be positive: zero would spin a loop, and a negative value would not
        // be a duration at all.
        let secs = |name: &'static str, d: Duration| {
            let v = parse(name, d.as_secs_f64())?;
            Duration::try_from_secs_f64(v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| ConfigError {
                    var: name,
                    problem: format!("`{v}` must be a positive number of seconds"),
                })
        };
        let queue = QueueConfig {
            prefix: var("NIGHTSHIFT_QUEUE_PREFIX").unwrap_or(defaults.prefix),
            lease: secs("NIGHTSHIFT_LEASE_SECS", defaults.lease)?,
            reap_interval: secs("NIGHTSHIFT_REAP_INTERVAL_SECS", defaults.reap_interval)?,
            heartbeat_interval: secs("NIGHTSHIFT_HEARTBEAT_SECS", defaults.heartbeat_interval)?,
            finished_ttl: secs("NIGHTSHIFT_FINISHED_TTL_SECS", defaults.finished_ttl)?,
            idempotency_ttl: secs("NIGHTSHIFT_IDEMPOTENCY_TTL_SECS", defaults.idempotency_ttl)?,
            fetch_batch: match parse("NIGHTSHIFT_FETCH_BATCH", defaults.fetch_batch)? {
                0 => {
                    return Err(ConfigError {
                        var: "NIGHTSHIFT_FETCH_BATCH",
                        problem: "must be at least 1".into(),
                    });
                }
                n => n,
            },
            sweep_batch: defaults.sweep_batch,
            idle_poll: defaults.idle_poll,
            rates: [(
                // The catalog's `email.send` (common does not link the catalog; a test in
                // tests/it/flow_keys.rs pins the name).
                "email.send".to_string(),
                nightshift_queue::Rate::per_second(
                    parse("NIGHTSHIFT_EMAIL_RATE_PER_DOMAIN", 20u32)?.max(1),
                    parse("NIGHTSHIFT_EMAIL_RATE_BURST", 20u32)?.max(1),
                ),
            )]
            .into(),
        };
        let server_defaults = ServerLimits::default();
        let server = ServerLimits {
            header_read_timeout: secs("NIGHTSHIFT_HEADER_TIMEOUT_SECS", server_defaults.header_read_timeout)?,
            request_timeout: secs("NIGHTSHIFT_REQUEST_TIMEOUT_SECS", server_defaults.request_timeout)?,
            idle_timeout: secs("NIGHTSHIFT_IDLE_TIMEOUT_SECS", server_defaults.idle_timeout)?,
            write_timeout: secs("NIGHTSHIFT_WRITE_TIMEOUT_SECS", server_defaults.write_timeout)?,
            max_connections_per_ip: parse(
                "NIGHTSHIFT_MAX_CONNECTIONS_PER_IP",
                server_defaults.max_connections_per_ip,
            )?,
            max_connections: match parse("NIGHTSHIFT_MAX_CONNECTIONS", server_defaults.max_connections)? {
                0 => {
                    return Err(ConfigError {
                        var: "NIGHTSHIFT_MAX_CONNECTIONS",
                        problem: "must be at least 1".into(),
                    });
                }
                n => n,
            },
        };
        let public_hosts = match var("NIGHTSHIFT_PUBLIC_URL") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| {
                    url::Url::parse(u)
                        .ok()
                        .filter(|p| matches!(p.scheme(), "http" | "https"))
                        .and_then(|p| {
                            let host = p.host_str()?.to_ascii_lowercase();
                            Some(match p.port() {
                                Some(port) => format!("{host}:{port}"),
                                None => host,
                            })
                        })
                        .ok_or_else(|| ConfigError {
                            var: "NIGHTSHIFT_PUBLIC_URL",
                            problem: format!("`{u}` is not an http(s) URL with a host"),
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        if queue.lease < Duration::from_millis(300) {
            return Err(ConfigError {
                var: "NIGHTSHIFT_LEASE_SECS",
                problem: "must be at least 0.3 seconds".into(),
            });
        }
        Ok(Config {
            redis_url: var("REDIS_URL").unwrap_or_else(|| DEFAULT_REDIS_URL.into()),
            database_url: var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            api_addr: parse("NIGHTSHIFT_API_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            ops_addr: var("NIGHTSHIFT_OPS_ADDR")
                .map(|v| {
                    v.trim().parse().map_err(|e| ConfigError {
                        var: "NIGHTSHIFT_OPS_ADDR",
                        problem: format!("`{v}` is not a socket address: {e}"),
                    })
                })
                .transpose()?,
            jwt_secret,
            queue,
            concurrency: parse("NIGHTSHIFT_CONCURRENCY", 64usize)?.max(1),
            allow_eviction: flag("NIGHTSHIFT_ALLOW_EVICTION")?,
            history: !flag("NIGHTSHIFT_HISTORY_OFF")?,
            shutdown_timeout: secs("NIGHTSHIFT_SHUTDOWN_TIMEOUT_SECS", Duration::from_secs(30))?,
            mail: MailConfig {
                smtp_url: match var("NIGHTSHIFT_SMTP_URL") {
                    None => "smtp://127.0.0.1:1025".into(),
                    Some(u) if u.starts_with("smtp://") || u.starts_with("smtps://") => u,
                    Some(u) => {
                        return Err(ConfigError {
                            var: "NIGHTSHIFT_SMTP_URL",
                            problem: format!("`{u}` must start with smtp:// or smtps://"),
                        });
                    }
                },
                smtp_username: var("NIGHTSHIFT_SMTP_USERNAME"),
                smtp_password: var("NIGHTSHIFT_SMTP_PASSWORD").map(SecretString::from),
                smtp_timeout: secs("NIGHTSHIFT_SMTP_TIMEOUT_SECS", Duration::from_secs(15))?,
                from: var("NIGHTSHIFT_MAIL_FROM")
                    .unwrap_or_else(|| "Nightshift <no-reply@nightshift.localhost>".into()),
            },
            api_limits: ApiLimits {
                per_client: (
                    // Services enqueue in bursts: generous per client, strict for failed logins.
                    parse("NIGHTSHIFT_API_RATE_PER_MINUTE", 60_000u32)?.max(1),
                    parse("NIGHTSHIFT_API_RATE_BURST", 2_000u32)?.max(1),
                ),
                per_ip: (
                    parse("NIGHTSHIFT_API_IP_RATE_PER_MINUTE", 120_000u32)?.max(1),
                    parse("NIGHTSHIFT_API_IP_RATE_BURST", 4_000u32)?.max(1),
                ),
                auth_failures: (parse("NIGHTSHIFT_AUTH_FAILURES_PER_MINUTE", 10u32)?.max(1), 10),
                open_batches: parse("NIGHTSHIFT_MAX_OPEN_BATCHES", 1_000u32)?.max(1),
            },
            cors_origins: match var("NIGHTSHIFT_CORS_ORIGINS") {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(|o| match url::Url::parse(o) {
                        Ok(u) if matches!(u.scheme(), "http" | "https") && u.path() == "/" => {
                            Ok(o.trim_end_matches('/').to_string())
                        }
                        _ => Err(ConfigError {
                            var: "NIGHTSHIFT_CORS_ORIGINS",
                            problem: format!("`{o}` is not an origin like https://app.example.com"),
                        }),
                    })
                    .collect::<Result<_, _>>()?,
            },
            master_key,
            key_rotation: days("NIGHTSHIFT_KEY_ROTATION_DAYS", 90)?,
            key_grace,
            token_max_ttl,
            backup: backup_config()?,
            operator_emails: var("NIGHTSHIFT_OPERATOR_EMAILS")
                .map(|l| {
                    l.split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            webhook_allow_private: flag("NIGHTSHIFT_WEBHOOK_ALLOW_PRIVATE")?,
            diagnostics: flag("NIGHTSHIFT_DIAGNOSTICS")?,
            server,
            public_hosts,
            // 0 is "project after every change", as documented; only negative or unparsable
            // values are refused.
            cashflow_debounce: {
                let name = "NIGHTSHIFT_CASHFLOW_DEBOUNCE_SECS";
                Duration::try_from_secs_f64(parse(name, 10.0)?).map_err(|_| ConfigError {
                    var: name,
                    problem: "must be 0 or a positive number of seconds".into(),
                })?
            },
            batch_orphan_age: secs("NIGHTSHIFT_BATCH_ORPHAN_SECS", Duration::from_secs(600))?,
        })
    }
}

// Over 400 lines: the checks by area (Redis, PostgreSQL, SMTP, keys, clocks), each printing several lines of findings with their fixes, read top to bottom as the report prints.
//! `nightshift doctor`: what is wrong with this set-up, in one place. Each check prints as
//! `ok`, `warn` or `fail` with what it found and, when it is not ok, the fix. The exit status is
//! non-zero when any check fails: a deploy script or `scripts/dev.sh` can act on it.
use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};
use nightshift_common::{Config, db};
use nightshift_workers::jobs::backup::pg::Tools;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug)]
pub struct Check {
    pub area: &'static str,
    pub status: Status,
    pub found: String,
    pub fix: Option<String>,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match self.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        write!(f, "{status} {:<10} {}", self.area, self.found)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n     {:<10} fix: {fix}", "")?;
        }
        Ok(())
    }
}

fn check(area: &'static str, status: Status, found: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        area,
        status,
        found: found.into(),
        fix: fix.map(str::to_string),
    }
}

/// How far apart two clocks may be before the doctor says so: the one threshold the processes
/// warn at and export against (`nightshift_queue::clock::TOLERANCE`). A host's own clock only
/// warns (decisions take Redis's or PostgreSQL's time, and processes correct their reads); Redis
/// and PostgreSQL apart fail past `SKEW_FAIL`, since the queue decides by one and the scheduler
/// and the sweeps by the other.
const SKEW_WARN: Duration = nightshift_queue::clock::TOLERANCE;
const SKEW_FAIL: Duration = Duration::from_secs(5);
/// The oldest Redis the scripts run on (`RPOP key count`, `ZADD … XX`).
const REDIS_MIN: (u32, u32) = (6, 2);
const PG_MIN: u32 = 14;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Runs every check; prints them and returns whether any failed.
pub async fn run(config: &Config) -> anyhow::Result<bool> {
    let checks = checks(config).await;
    for c in &checks {
        println!("{c}");
    }
    let (warn, fail) = checks.iter().fold((0, 0), |(w, f), c| match c.status {
        Status::Ok => (w, f),
        Status::Warn => (w + 1, f),
        Status::Fail => (w, f + 1),
    });
    println!(
        "{} checks: {} ok, {warn} warn, {fail} failed",
        checks.len(),
        checks.len() - warn - fail
    );
    Ok(fail > 0)
}

pub async fn checks(config: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    let redis_time = redis(config, &mut out).await;
    let pg_time = postgres(config, &mut out).await;
    smtp(config, &mut out).await;
    keys(config, &mut out).await;
    clocks(redis_time, pg_time, &mut out);
    out
}

fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// A server's clock and this host's at the same instant (the middle of the round trip).
type Clocks = (DateTime<Utc>, DateTime<Utc>);

/// Reads a remote clock with `read`, and this host's at the middle of the round trip.
async fn clock_of<F: Future<Output = Option<DateTime<Utc>>>>(read: F) -> Option<Clocks> {
    let before = Utc::now();
    let there = read.await?;
    let after = Utc::now();
    Some((there, before + (after - before) / 2))
}

/// Reachable, version, eviction, persistence, topology; the server's clock.
async fn redis(config: &Config, out: &mut Vec<Check>) -> Option<Clocks> {
    let conn = tokio::time::timeout(TIMEOUT, nightshift_queue::connect_redis(&config.redis_url)).await;
    let url = shown(&config.redis_url);
    let mut conn = match conn {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            out.push(check(
                "redis",
                Status::Fail,
                format!("cannot connect to {url}: {e}"),
                Some("start Redis, or set REDIS_URL"),
            ));
            return None;
        }
        Err(_) => {
            out.push(check(
                "redis",
                Status::Fail,
                format!("no answer from {url} in 5 s"),
                Some("start Redis, or set REDIS_URL"),
            ));
            return None;
        }
    };
    // On a cluster, one reply per node; the first node speaks for the rest here, and the
    // worker's own start-up check asks every master about eviction.
    let info: String = match redis::cmd("INFO")
        .arg("server")
        .arg("memory")
        .arg("persistence")
        .arg("cluster")
        .query_async::<redis::Value>(&mut conn)
        .await
    {
        Ok(redis::Value::Map(nodes)) => nodes
            .into_iter()
            .next()
            .and_then(|(_, v)| redis::from_redis_value(v).ok())
            .unwrap_or_default(),
        Ok(v) => redis::from_redis_value(v).unwrap_or_default(),
        Err(e) => {
            out.push(check(
                "redis",
                Status::Fail,
                format!("INFO failed: {e}"),
                Some("check the user's ACL allows INFO"),
            ));
            return None;
        }
    };
    let version = info_field(&info, "redis_version").unwrap_or("unknown");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    out.push(if (major, minor) >= REDIS_MIN {
        check(
            "redis",
            Status::Ok,
            format!("reachable at {url}, version {version}"),
            None,
        )
    } else {
        check(
            "redis",
            Status::Fail,
            format!("version {version}; the queue's scripts need 6.2 or later"),
            Some("upgrade Redis to 6.2 or later (Debian bookworm ships 7.0)"),
        )
    });
    let policy = info_field(&info, "maxmemory_policy").unwrap_or("unknown");
    out.push(match policy {
        "noeviction" => check(
            "redis",
            Status::Ok,
            "maxmemory-policy noeviction: no job is ever evicted",
            None,
        ),
        p if config.allow_eviction => check(
            "redis",
            Status::Warn,
            format!("maxmemory-policy {p}, allowed by NIGHTSHIFT_ALLOW_EVICTION: a full Redis may evict jobs"),
            Some("CONFIG SET maxmemory-policy noeviction (and in redis.conf)"),
        ),
        p => check(
            "redis",
            Status::Fail,
            format!("maxmemory-policy {p}: a full Redis evicts jobs silently, and workers refuse to start"),
            Some("CONFIG SET maxmemory-policy noeviction (and in redis.conf)"),
        ),
    });
    out.push(match info_field(&info, "aof_enabled") {
        Some("1") => check(
            "redis",
            Status::Ok,
            "append-only file on: a Redis crash loses at most a second",
            None,
        ),
        _ => check(
            "redis",
            Status::Warn,
            "no append-only file: a Redis crash loses what was queued since the last snapshot",
            Some("CONFIG SET appendonly yes; appendfsync everysec (and in redis.conf)"),
        ),
    });
    out.push(match info_field(&info, "cluster_enabled") {
        Some("1") => check(
            "redis",
            Status::Ok,
            "Redis Cluster: each queue lives in one slot (its name is the hash tag)",
            None,
        ),
        _ => check("redis", Status::Ok, "a single Redis (no cluster)", None),
    });
    clock_of(async {
        let (s, us): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await.ok()?;
        DateTime::from_timestamp(s, (us * 1000) as u32)
    })
    .await
}

/// Reachable, version, migrations, pg_dump against the server; the server's clock.
async fn postgres(config: &Config, out: &mut Vec<Check>) -> Option<Clocks> {
    let pool = match tokio::time::timeout(TIMEOUT, db::connect(&config.database_url, 1)).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            out.push(check(
                "postgres",
                Status::Fail,
                format!("cannot connect: {e}"),
                Some("start PostgreSQL, or set DATABASE_URL"),
            ));
            return None;
        }
        Err(_) => {
            out.push(check(
                "postgres",
                Status::Fail,
                "no answer in 5 s",
                Some("start PostgreSQL, or set DATABASE_URL"),
            ));
            return None;
        }
    };
    let row: Result<(i32, String), _> =
        sqlx::query_as("SELECT current_setting('server_version_num')::int, current_setting('server_version')")
            .fetch_one(&pool)
            .await;
    let Ok((num, version)) = row else {
        out.push(check(
            "postgres",
            Status::Fail,
            "connected, but cannot read the server's version",
            None,
        ));
        return None;
    };
    let major = num as u32 / 10_000;
    out.push(if major >= PG_MIN {
        check("postgres", Status::Ok, format!("reachable, version {version}"), None)
    } else {
        check(
            "postgres",
            Status::Fail,
            format!("version {version}; Nightshift needs {PG_MIN} or later"),
            Some("upgrade PostgreSQL"),
        )
    });
    let latest = db::MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .ok()
        .flatten();
    out.push(match applied {
        Some(v) if v >= latest => check("postgres", Status::Ok, format!("migrations applied (up to {v})"), None),
        Some(v) => check(
            "postgres",
            Status::Fail,
            format!("migrations applied up to {v} of {latest}"),
            Some("nightshift migrate"),
        ),
        None => check(
            "postgres",
            Status::Fail,
            "no migrations applied",
            Some("nightshift migrate"),
        ),
    });
    out.push(match Tools::locate(config.backup.pg_bindir.as_deref()).await {
        Ok(tools) => match tools.check_server(num as u32) {
            Ok(()) => check(
                "postgres",
                Status::Ok,
                format!("{} can dump this server", tools.version),
                None,
            ),
            Err(e) => check(
                "postgres",
                Status::Fail,
                e.to_string(),
                Some("install the matching postgresql-client, or set NIGHTSHIFT_PG_BINDIR"),
            ),
        },
        Err(e) => check(
            "postgres",
            Status::Warn,
            format!("no pg_dump: backups cannot run ({e})"),
            Some("install postgresql-client, or set NIGHTSHIFT_PG_BINDIR"),
        ),
    });
    clock_of(async {
        sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&pool)
            .await
            .ok()
    })
    .await
}

/// A URL as the report shows it: without its credentials (a Redis or SMTP password is a
/// secret), or only its scheme when it does not parse.
fn shown(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => raw.split("://").next().unwrap_or("").to_string() + "://…",
    }
}

/// Connects and says EHLO, as the mailer would.
async fn smtp(config: &Config, out: &mut Vec<Check>) {
    use lettre::{AsyncSmtpTransport, Tokio1Executor};
    let url = &config.mail.smtp_url;
    let shown = shown(url);
    let transport: AsyncSmtpTransport<Tokio1Executor> = match AsyncSmtpTransport::<Tokio1Executor>::from_url(url) {
        Ok(b) => b.timeout(Some(TIMEOUT)).build(),
        Err(e) => {
            out.push(check(
                "smtp",
                Status::Fail,
                format!("{shown} is not an SMTP URL: {e}"),
                Some("set NIGHTSHIFT_SMTP_URL to smtp://host:port or smtps://host:port"),
            ));
            return;
        }
    };
    out.push(match transport.test_connection().await {
        Ok(true) => check("smtp", Status::Ok, format!("{shown} answers EHLO"), None),
        Ok(false) => check(
            "smtp",
            Status::Fail,
            format!("{shown} connected but did not answer EHLO"),
            Some("check NIGHTSHIFT_SMTP_URL points at an SMTP server"),
        ),
        Err(e) => check(
            "smtp",
            Status::Fail,
            format!("{shown}: {e}"),
            Some("start the SMTP relay, or set NIGHTSHIFT_SMTP_URL"),
        ),
    });
}

/// Token keys, their age, and the backup key.
async fn keys(config: &Config, out: &mut Vec<Check>) {
    match (&config.master_key, &config.jwt_secret) {
        (Some(_), _) => {
            let age = match db::connect(&config.database_url, 1).await {
                Ok(pool) => nightshift_common::keyring::active_age(&pool).await.ok().flatten(),
                Err(_) => None,
            };
            out.push(match age {
                Some(age) if age <= config.key_rotation => check(
                    "keys",
                    Status::Ok,
                    format!(
                        "keyring: the signing key is {} days old (rotated at {})",
                        age.as_secs() / 86_400,
                        config.key_rotation.as_secs() / 86_400
                    ),
                    None,
                ),
                Some(age) => check(
                    "keys",
                    Status::Warn,
                    format!(
                        "keyring: the signing key is {} days old, past its rotation at {} days",
                        age.as_secs() / 86_400,
                        config.key_rotation.as_secs() / 86_400
                    ),
                    Some("is the scheduler running? `nightshift keys rotate` rotates now"),
                ),
                None => check(
                    "keys",
                    Status::Warn,
                    "keyring: no active signing key yet (the API makes one at start-up)",
                    Some("start `nightshift api` once"),
                ),
            });
        }
        (None, Some(_)) => out.push(check(
            "keys",
            Status::Warn,
            "a fixed NIGHTSHIFT_JWT_SECRET: tokens are never rotated",
            Some("set NIGHTSHIFT_MASTER_KEY to sign with the rotating keyring"),
        )),
        (None, None) => out.push(check(
            "keys",
            Status::Fail,
            "neither NIGHTSHIFT_MASTER_KEY nor NIGHTSHIFT_JWT_SECRET: the API cannot sign or verify a token",
            Some("set NIGHTSHIFT_MASTER_KEY (64 hex characters)"),
        )),
    }
    out.push(match &config.backup.key {
        Some(_) => check("keys", Status::Ok, "backup key present: backups are encrypted", None),
        None => check(
            "keys",
            Status::Warn,
            "no NIGHTSHIFT_BACKUP_KEY: backups cannot run",
            Some("nightshift backup keygen, then set NIGHTSHIFT_BACKUP_KEY"),
        ),
    });
}

/// This host's clock against Redis's and PostgreSQL's, and Redis's against PostgreSQL's.
fn clocks(redis: Option<Clocks>, pg: Option<Clocks>, out: &mut Vec<Check>) {
    const NTP: &str = "run NTP (chrony or systemd-timesyncd) on every host";
    for (name, clocks) in [("redis", redis), ("postgres", pg)] {
        let Some((there, here)) = clocks else { continue };
        let skew = (there - here).abs().to_std().unwrap_or_default();
        let found = format!("{name} is {} ms from this host", skew.as_millis());
        let status = if skew <= SKEW_WARN { Status::Ok } else { Status::Warn };
        out.push(check("clock", status, found, (status != Status::Ok).then_some(NTP)));
    }
    if let (Some((r, r_here)), Some((p, p_here))) = (redis, pg) {
        let apart = ((r - r_here) - (p - p_here)).abs().to_std().unwrap_or_default();
        let found = format!("redis and postgres are {} ms apart", apart.as_millis());
        out.push(match apart {
            s if s <= SKEW_WARN => check("clock", Status::Ok, found, None),
            s if s <= SKEW_FAIL => check("clock", Status::Warn, found, Some(NTP)),
            _ => check(
                "clock",
                Status::Fail,
                found,
                Some("run NTP on the Redis and PostgreSQL hosts: leases follow one clock, schedules the other"),
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_credentials() {
        assert_eq!(shown("redis://:hunter2@cache:6379/0"), "redis://cache:6379/0");
        assert_eq!(
            shown("smtps://mailer:hunter2@smtp.example.com:465"),
            "smtps://smtp.example.com:465"
        );
        assert!(!shown("redis://:hunter2@[bad").contains("hunter2"));
    }

    #[test]
    fn a_host_clock_off_warns_and_redis_and_postgres_apart_fail() {
        let here = Utc::now();
        let statuses = |redis: i64, pg: Option<i64>| {
            let at = |ms: i64| Some((here + chrono::Duration::milliseconds(ms), here));
            let mut out = Vec::new();
            clocks(at(redis), pg.and_then(at), &mut out);
            out.iter().map(|c| c.status).collect::<Vec<_>>()
        };
        use Status::*;
        // This host against each, then Redis against PostgreSQL.
        assert_eq!(statuses(200, Some(-300)), [Ok, Ok, Ok]);
        assert_eq!(statuses(200, Some(-2_000)), [Ok, Warn, Warn]);
        // A host 30 s off only warns: decisions take the servers' time, reads are corrected.
        assert_eq!(statuses(30_000, None), [Warn]);
        assert_eq!(statuses(30_000, Some(30_200)), [Warn, Warn, Ok]);
        assert_eq!(statuses(0, Some(6_000)), [Ok, Warn, Fail]);
    }
}

//! What the backups need from PostgreSQL: its client tools (found, and new enough for the
//! server), connection arguments that keep the password out of `ps`, and a fingerprint of a
//! database (schema and per-table content) that a restore must reproduce.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, Row};

use super::BackupError;

/// pg_dump and pg_restore, located and versioned.
#[derive(Debug, Clone)]
pub struct Tools {
    pub pg_dump: PathBuf,
    pub pg_restore: PathBuf,
    /// `pg_dump (PostgreSQL) 15.20 ...`
    pub version: String,
    pub major: u32,
}

impl Tools {
    pub async fn locate(bindir: Option<&Path>) -> Result<Tools, BackupError> {
        let path = |name: &str| bindir.map_or_else(|| PathBuf::from(name), |d| d.join(name));
        let (pg_dump, pg_restore) = (path("pg_dump"), path("pg_restore"));
        let out = tokio::process::Command::new(&pg_dump)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| BackupError::Tool(format!("cannot run {}: {e}", pg_dump.display())))?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let major = major_version(&version)
            .ok_or_else(|| BackupError::Tool(format!("cannot read a version in `{version}` from pg_dump --version")))?;
        Ok(Tools {
            pg_dump,
            pg_restore,
            version,
            major,
        })
    }

    /// pg_dump refuses servers newer than itself, but only once it has started; say so first,
    /// with what to install.
    pub fn check_server(&self, server_version_num: u32) -> Result<(), BackupError> {
        let server_major = server_version_num / 10_000;
        if self.major < server_major {
            return Err(BackupError::Tool(format!(
                "{} is older than the server (PostgreSQL {server_major}); install postgresql-client-{server_major} \
                 or point NIGHTSHIFT_PG_BINDIR at its bin directory",
                self.version
            )));
        }
        Ok(())
    }
}

/// The major version in `pg_dump (PostgreSQL) 15.20 (Debian ...)` or `... 9.6.24`.
pub fn major_version(version_output: &str) -> Option<u32> {
    let number = version_output
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    let mut parts = number.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next()??, parts.next()) {
        // Before 10 the major version was two numbers; anything that old is too old anyway.
        (9, _) => Some(9),
        (major, _) => Some(major),
    }
}

/// A database URL as libpq tool arguments: the URL without its password, and the password
/// for PGPASSWORD, so neither a log line nor `ps` shows it.
pub fn libpq_args(database_url: &str) -> Result<(String, Option<String>), BackupError> {
    let mut url = url::Url::parse(database_url)
        .map_err(|e| BackupError::Config(format!("the database URL does not parse: {e}")))?;
    let password = url
        .password()
        .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned());
    let _ = url.set_password(None);
    Ok((url.to_string(), password))
}

/// A libpq tool with the connection in its arguments and environment, never prompting.
pub fn command(tool: &Path, database_url: &str) -> Result<tokio::process::Command, BackupError> {
    let (url, password) = libpq_args(database_url)?;
    let mut cmd = tokio::process::Command::new(tool);
    cmd.arg("--no-password")
        .arg(format!("--dbname={url}"))
        .kill_on_drop(true);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    Ok(cmd)
}

/// What a database held: the SHA-256 of its schema-only dump and, per table, a row count and
/// an order-independent content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub schema_sha256: String,
    pub tables: BTreeMap<String, TableFingerprint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFingerprint {
    pub rows: i64,
    pub hash: String,
}

impl Fingerprint {
    /// What differs in `restored`, one line each; empty when they match.
    pub fn differences(&self, restored: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        if self.schema_sha256 != restored.schema_sha256 {
            out.push("the schema differs (pg_dump --schema-only)".to_string());
        }
        for (name, want) in &self.tables {
            match restored.tables.get(name) {
                None => out.push(format!("{name}: missing from the restore")),
                Some(got) if got.rows != want.rows => out.push(format!(
                    "{name}: {} rows in the backup, {} restored",
                    want.rows, got.rows
                )),
                Some(got) if got.hash != want.hash => out.push(format!("{name}: same row count, different content")),
                Some(_) => {}
            }
        }
        for name in restored.tables.keys().filter(|n| !self.tables.contains_key(*n)) {
            out.push(format!("{name}: in the restore but not in the backup"));
        }
        out
    }
}

/// Text output that does not depend on the session: a row's `::text` feeds the hash.
pub async fn fixed_text_settings(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    for set in [
        "SET TIME ZONE 'UTC'",
        "SET DateStyle = 'ISO, YMD'",
        "SET IntervalStyle = 'postgres'",
        "SET extra_float_digits = 1",
        "SET bytea_output = 'hex'",
    ] {
        sqlx::query(set).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Row count and content hash of every table the connection sees, inside whatever snapshot
/// it is in. The hash sums 64 bits of each row's MD5 as numeric: independent of row order and
/// physical layout, streaming, and without an index.
pub async fn table_fingerprints(conn: &mut PgConnection) -> Result<BTreeMap<String, TableFingerprint>, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
         ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = BTreeMap::new();
    for name in names {
        // `name` was quoted by format('%I'), so it is safe to splice.
        let row = sqlx::query(&format!(
            "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint::numeric), 0)::text
             FROM ONLY {name} AS t"
        ))
        .fetch_one(&mut *conn)
        .await?;
        out.insert(
            name,
            TableFingerprint {
                rows: row.get(0),
                hash: row.get(1),
            },
        );
    }
    Ok(out)
}

/// SHA-256 of `pg_dump --schema-only` without what varies between two dumps of the same
/// schema: owners, grants, the version banner and the random `\restrict` key.
pub async fn schema_sha256(tools: &Tools, database_url: &str, snapshot: Option<&str>) -> Result<String, BackupError> {
    let mut cmd = command(&tools.pg_dump, database_url)?;
    cmd.args(["--schema-only", "--no-owner", "--no-privileges"]);
    if let Some(s) = snapshot {
        cmd.arg(format!("--snapshot={s}"));
    }
    let out = cmd.stdin(Stdio::null()).output().await?;
    if !out.status.success() {
        return Err(BackupError::Tool(format!(
            "pg_dump --schema-only failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut h = Sha256::new();
    for line in text
        .lines()
        .filter(|l| !(l.starts_with("\\restrict") || l.starts_with("\\unrestrict") || l.starts_with("-- Dumped ")))
    {
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    Ok(hex::encode(h.finalize()))
}

/// The whole fingerprint of a database as it is now (a restored one).
pub async fn fingerprint(tools: &Tools, database_url: &str) -> Result<Fingerprint, BackupError> {
    let mut conn = PgConnection::connect(database_url).await?;
    fixed_text_settings(&mut conn).await?;
    let tables = table_fingerprints(&mut conn).await?;
    conn.close().await?;
    Ok(Fingerprint {
        schema_sha256: schema_sha256(tools, database_url, None).await?,
        tables,
    })
}

/// Whether the database has any table, view, sequence or type of its own.
pub async fn is_empty(database_url: &str) -> Result<bool, sqlx::Error> {
    let mut conn = PgConnection::connect(database_url).await?;
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(n == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_major_versions_from_pg_dump_banners() {
        assert_eq!(
            major_version("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(major_version("pg_dump (PostgreSQL) 17.2"), Some(17));
        assert_eq!(major_version("pg_dump (PostgreSQL) 9.6.24"), Some(9));
        assert_eq!(major_version("command not found"), None);
    }

    #[test]
    fn an_older_pg_dump_is_refused_before_it_runs() {
        let tools = |major| Tools {
            pg_dump: "pg_dump".into(),
            pg_restore: "pg_restore".into(),
            version: format!("pg_dump (PostgreSQL) {major}.1"),
            major,
        };
        assert!(tools(15).check_server(150_020).is_ok());
        assert!(tools(16).check_server(150_020).is_ok());
        let err = tools(14).check_server(150_020).unwrap_err().to_string();
        assert!(err.contains("older than the server (PostgreSQL 15)"), "{err}");
        assert!(err.contains("postgresql-client-15"), "{err}");
    }

    #[test]
    fn the_password_leaves_the_url_for_the_environment() {
        let (url, pw) = libpq_args("postgres://app:s%40cr%2Bt@db.internal:5432/finance").unwrap();
        assert_eq!(url, "postgres://app@db.internal:5432/finance");
        assert_eq!(pw.as_deref(), Some("s@cr+t"));
        let (url, pw) = libpq_args("postgres://postgres@127.0.0.1/x").unwrap();
        assert_eq!((url.as_str(), pw), ("postgres://postgres@127.0.0.1/x", None));
    }

    #[test]
    fn differences_name_each_table() {
        let fp = |rows: i64, hash: &str| Fingerprint {
            schema_sha256: "s".into(),
            tables: [(
                "public.a".to_string(),
                TableFingerprint {
                    rows,
                    hash: hash.into(),
                },
            )]
            .into(),
        };
        assert!(fp(3, "h").differences(&fp(3, "h")).is_empty());
        assert_eq!(
            fp(3, "h").differences(&fp(2, "h")),
            vec!["public.a: 3 rows in the backup, 2 restored"]
        );
        assert_eq!(
            fp(3, "h").differences(&fp(3, "x")),
            vec!["public.a: same row count, different content"]
        );
    }
}

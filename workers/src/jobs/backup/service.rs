//! Taking backups and applying retention, from the configuration.
use std::{io::Write, str::FromStr};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use nightshift_common::{Config, config::BackupConfig};
use secrecy::ExposeSecret;
use sqlx::{Connection, PgConnection, PgPool, types::Json};
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;
use uuid::Uuid;

use super::{
    BackupError, Manifest, get,
    pg::{self, Fingerprint, Tools},
    retention::{self, Retention},
    store::{Store, Stored},
    stream::{ChunkSender, read_capped},
};

/// Everything backups need, from the configuration; opening the store waits for use.
pub struct Backups {
    pub(super) config: BackupConfig,
    pub(super) database_url: String,
}

impl Backups {
    pub fn from_config(config: &Config) -> Self {
        Backups {
            config: config.backup.clone(),
            database_url: config.database_url.clone(),
        }
    }

    pub fn retention(&self) -> Retention {
        Retention {
            daily: self.config.keep_daily,
            weekly: self.config.keep_weekly,
            monthly: self.config.keep_monthly,
        }
    }

    pub(super) fn identity(&self) -> Result<age::x25519::Identity, BackupError> {
        let key = self.config.key.as_ref().ok_or_else(|| {
            BackupError::Config("NIGHTSHIFT_BACKUP_KEY is not set; `nightshift backup keygen` makes one".into())
        })?;
        // The parser's message could quote the key; say only what is wrong.
        age::x25519::Identity::from_str(key.expose_secret().trim())
            .map_err(|_| BackupError::Config("NIGHTSHIFT_BACKUP_KEY is not a valid age identity".into()))
    }

    pub async fn store(&self) -> Result<Store, BackupError> {
        Store::open(&self.config.store).await
    }

    /// Takes a backup and records it; the manifest row says `failed` with the reason when it
    /// does not complete.
    pub async fn take(&self, db: &PgPool) -> Result<Manifest, BackupError> {
        // Everything that can be wrong before a byte is dumped is checked first.
        let recipient = self.identity()?.to_public();
        let tools = Tools::locate(self.config.pg_bindir.as_deref()).await?;
        let store = self.store().await?;
        let mut conn = PgConnection::connect(&self.database_url).await?;
        let (server_num, server_version, database): (i32, String, String) = sqlx::query_as(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version'), current_database()",
        )
        .fetch_one(&mut conn)
        .await?;
        tools.check_server(server_num as u32)?;
        // One backup at a time per database: a second would only double the load. The lock
        // is the session's, so a crashed worker's connection releases it.
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('nightshift.backup.run'))")
            .fetch_one(&mut conn)
            .await?;
        if !locked {
            return Err(BackupError::Busy);
        }
        // Holding the lock, any row still `running` belongs to a backup whose process died
        // (its session, and so its lock, went with it): say so rather than leave it running.
        let interrupted = sqlx::query(
            "UPDATE backups SET status = 'failed', finished_at = now(),
                    error = 'interrupted: the process taking it stopped before it finished'
             WHERE status = 'running'",
        )
        .execute(db)
        .await?
        .rows_affected();
        if interrupted > 0 {
            tracing::warn!(interrupted, "marked interrupted backups as failed");
        }
        let (id, started_at) = (Uuid::now_v7(), Utc::now());
        let location = store.location_for(id, started_at);
        sqlx::query(
            "INSERT INTO backups (id, status, started_at, store, location, database, pg_dump_version, server_version)
             VALUES ($1, 'running', $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(started_at)
        .bind(&store.name)
        .bind(&location)
        .bind(&database)
        .bind(&tools.version)
        .bind(&server_version)
        .execute(db)
        .await?;
        let span = tracing::info_span!("backup", backup.id = %id, store = %store.name);
        let result =
            tracing::Instrument::instrument(self.dump(&tools, &store, &mut conn, &location, recipient), span).await;
        let _ = conn.close().await;
        let seconds = (Utc::now() - started_at).as_seconds_f64();
        match result {
            Ok((stored, fp)) => {
                metrics::counter!("nightshift_backups_total", "outcome" => "succeeded").increment(1);
                metrics::gauge!("nightshift_backup_size_bytes").set(stored.size as f64);
                metrics::histogram!("nightshift_backup_seconds").record(seconds);
                tracing::info!(backup.id = %id, bytes = stored.size, seconds, "backup stored");
                sqlx::query(
                    "UPDATE backups SET status = 'succeeded', finished_at = now(), size_bytes = $2, sha256 = $3,
                     schema_sha256 = $4, tables = $5 WHERE id = $1",
                )
                .bind(id)
                .bind(stored.size as i64)
                .bind(&stored.sha256)
                .bind(&fp.schema_sha256)
                .bind(Json(&fp.tables))
                .execute(db)
                .await?;
                get(db, id).await
            }
            Err(e) => {
                metrics::counter!("nightshift_backups_total", "outcome" => "failed").increment(1);
                tracing::error!(backup.id = %id, error = %nightshift_common::telemetry::untrusted(&e.to_string()), "backup failed");
                // The error can quote the object store or pg_dump: outside text, made storable.
                sqlx::query("UPDATE backups SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1")
                    .bind(id)
                    .bind(nightshift_common::text::storable(&e.to_string(), 2000))
                    .execute(db)
                    .await?;
                Err(e)
            }
        }
    }

    /// Dumps inside one exported snapshot: the archive, the schema hash and the table
    /// fingerprints all see the same instant, however busy the database is.
    pub(super) async fn dump(
        &self,
        tools: &Tools,
        store: &Store,
        conn: &mut PgConnection,
        location: &str,
        recipient: age::x25519::Recipient,
    ) -> Result<(Stored, Fingerprint), BackupError> {
        pg::fixed_text_settings(conn).await?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *conn)
            .await?;
        let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut *conn)
            .await?;
        let (archive, schema, tables) = tokio::join!(
            self.stream_dump(tools, store, location, &snapshot, recipient),
            pg::schema_sha256(tools, &self.database_url, Some(&snapshot)),
            pg::table_fingerprints(conn),
        );
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        let (stored, schema_sha256, tables) = (archive?, schema?, tables?);
        Ok((stored, Fingerprint { schema_sha256, tables }))
    }

    /// pg_dump's stdout → age → the store, never more than a few MiB in memory.
    pub(super) async fn stream_dump(
        &self,
        tools: &Tools,
        store: &Store,
        location: &str,
        snapshot: &str,
        recipient: age::x25519::Recipient,
    ) -> Result<Stored, BackupError> {
        let mut child = pg::command(&tools.pg_dump, &self.database_url)?
            .args(["--format=custom", &format!("--snapshot={snapshot}")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| BackupError::Tool(format!("cannot run {}: {e}", tools.pg_dump.display())))?;
        let stderr = tokio::spawn(read_capped(child.stderr.take()));
        let mut dump = SyncIoBridge::new(child.stdout.take().expect("stdout is piped"));
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        // age's writer is synchronous: it runs on a blocking thread, the upload here.
        let encrypt = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let encryptor = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                .map_err(std::io::Error::other)?;
            let mut out = encryptor.wrap_output(ChunkSender::new(tx))?;
            std::io::copy(&mut dump, &mut out)?;
            out.finish()?.flush()
        });
        let upload = store.upload(location, rx).await;
        if upload.is_err() {
            let _ = child.start_kill();
        }
        let encrypted = encrypt.await.map_err(std::io::Error::other)?;
        let status = child.wait().await?;
        let stderr = stderr.await.unwrap_or_default();
        let upload = upload?;
        if !status.success() {
            upload.abort().await;
            return Err(BackupError::Dump {
                status: status.to_string(),
                stderr,
            });
        }
        if let Err(e) = encrypted {
            upload.abort().await;
            return Err(e.into());
        }
        upload.commit().await
    }

    /// Applies retention to this store's backups: deletes the files of those no rule keeps
    /// (never the newest verified one) and records why on their manifest rows.
    pub async fn prune(&self, db: &PgPool, store: &Store) -> Result<Vec<Uuid>, BackupError> {
        let live: Vec<(Uuid, DateTime<Utc>, String, bool)> = sqlx::query_as(
            "SELECT id, started_at, location, verify_status IS NOT DISTINCT FROM 'verified' FROM backups
             WHERE status = 'succeeded' AND deleted_at IS NULL AND store = $1",
        )
        .bind(&store.name)
        .fetch_all(db)
        .await?;
        let policy = self.retention();
        let taken: Vec<(Uuid, DateTime<Utc>)> = live.iter().map(|(id, at, ..)| (*id, *at)).collect();
        let mut keep = retention::keep(&taken, policy);
        if let Some((id, ..)) = live.iter().filter(|b| b.3).max_by_key(|b| b.1) {
            keep.insert(*id);
        }
        let reason = format!(
            "retention: {} daily, {} weekly, {} monthly",
            policy.daily, policy.weekly, policy.monthly
        );
        let mut deleted = Vec::new();
        for (id, _, location, _) in live.iter().filter(|b| !keep.contains(&b.0)) {
            store.delete(location).await?;
            sqlx::query("UPDATE backups SET deleted_at = now(), deleted_reason = $2 WHERE id = $1")
                .bind(id)
                .bind(&reason)
                .execute(db)
                .await?;
            tracing::info!(backup.id = %id, %location, "backup deleted by retention");
            deleted.push(*id);
        }
        Ok(deleted)
    }
}

/// A new age identity for NIGHTSHIFT_BACKUP_KEY and its public recipient.
pub fn keygen() -> (String, String) {
    let identity = age::x25519::Identity::generate();
    (
        identity.to_string().expose_secret().to_string(),
        identity.to_public().to_string(),
    )
}

/// The database name of a URL, for messages that must not show its password.
pub(super) fn database_name(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.path().trim_start_matches('/').to_string())
        .unwrap_or_else(|_| "?".into())
}

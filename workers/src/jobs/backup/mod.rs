//! `backup.run` and `backup.verify`: database backups that are proven restorable.
//!
//! A backup is `pg_dump --format=custom` of the application database, streamed through age
//! encryption into the store (a directory or an S3 bucket) with a SHA-256 of the stored bytes,
//! and a manifest row in `backups`. In the same exported snapshot as the dump, the job records
//! the schema's hash and each table's row count and content hash, so a restore can be
//! compared with the source as it was at the dump and not as it is now.
//!
//! `backup.verify` is the nightly restore drill: checksum, decrypt, `pg_restore` into a scratch
//! database, compare fingerprints, record the verdict, alert operators when it fails.
use std::{io::Write, str::FromStr, time::Duration};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use nightshift_catalog::backup::{Run, RunPayload, Verify, VerifyPayload};
use nightshift_common::{Config, config::BackupConfig, db};
use nightshift_queue::{Job, Outcome};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool, migrate::MigrateDatabase, types::Json};
use tokio::{io::AsyncReadExt, process::ChildStderr, sync::mpsc};
use tokio_util::io::SyncIoBridge;
use uuid::Uuid;

use super::{Handler, JobEnv};

pub mod pg;
pub mod retention;
pub mod store;

use pg::{Fingerprint, Tools};
use retention::Retention;
use store::{Store, Stored};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Tool(String),
    #[error("another backup is running")]
    Busy,
    #[error("pg_dump failed ({status}): {stderr}")]
    Dump { status: String, stderr: String },
    #[error("pg_restore failed ({status}): {stderr}")]
    Restore { status: String, stderr: String },
    #[error(
        "checksum mismatch: the stored file's SHA-256 is {actual}, the manifest recorded {expected}; \
         the file was altered or damaged and is not restored"
    )]
    Checksum { expected: String, actual: String },
    #[error("the backup is not encrypted to NIGHTSHIFT_BACKUP_KEY: wrong key")]
    WrongKey,
    #[error("decrypting the backup: {0}")]
    Decrypt(String),
    #[error("the restore does not match the backup: {}", .0.join("; "))]
    Mismatch(Vec<String>),
    #[error("no backup {0}")]
    NotFound(String),
    #[error("backup {0} cannot be restored: {1}")]
    NotRestorable(Uuid, String),
    #[error("database `{0}` is not empty; pass --force to restore over what is there")]
    NotEmpty(String),
    #[error("backup store: {0}")]
    Store(#[from] object_store::Error),
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl BackupError {
    /// Failures a retry cannot fix: configuration, tools, and a backup that is bad.
    fn is_permanent(&self) -> bool {
        matches!(
            self,
            BackupError::Config(_)
                | BackupError::Tool(_)
                | BackupError::Checksum { .. }
                | BackupError::WrongKey
                | BackupError::Decrypt(_)
                | BackupError::Mismatch(_)
                | BackupError::NotFound(_)
                | BackupError::NotRestorable(..)
        )
    }
}

/// A manifest row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Manifest {
    pub id: Uuid,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub store: String,
    pub location: String,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub pg_dump_version: Option<String>,
    pub server_version: Option<String>,
    pub database: String,
    pub error: Option<String>,
    pub verify_status: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub verify_error: Option<String>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub deleted_reason: Option<String>,
    #[serde(skip)]
    pub schema_sha256: Option<String>,
    #[serde(skip)]
    pub tables: Option<Json<std::collections::BTreeMap<String, pg::TableFingerprint>>>,
}

impl Manifest {
    fn fingerprint(&self) -> Option<Fingerprint> {
        Some(Fingerprint {
            schema_sha256: self.schema_sha256.clone()?,
            tables: self.tables.as_ref()?.0.clone(),
        })
    }
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub backup_id: Uuid,
    pub bytes: u64,
    pub tables: usize,
    pub rows: i64,
    pub seconds: f64,
}

/// Everything backups need, from the configuration; opening the store waits for use.
pub struct Backups {
    config: BackupConfig,
    database_url: String,
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

    fn identity(&self) -> Result<age::x25519::Identity, BackupError> {
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
                tracing::error!(backup.id = %id, error = %e, "backup failed");
                sqlx::query("UPDATE backups SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1")
                    .bind(id)
                    .bind(e.to_string())
                    .execute(db)
                    .await?;
                Err(e)
            }
        }
    }

    /// Dumps inside one exported snapshot: the archive, the schema hash and the table
    /// fingerprints all see the same instant, however busy the database is.
    async fn dump(
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
    async fn stream_dump(
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

    /// Restores backup `id` into `into`, which must be empty unless `force`, then checks that
    /// what was restored is what the source held at the dump.
    pub async fn restore(&self, db: &PgPool, id: Uuid, into: &str, force: bool) -> Result<Restored, BackupError> {
        let started = std::time::Instant::now();
        let manifest = get(db, id).await?;
        if manifest.status != "succeeded" {
            return Err(BackupError::NotRestorable(
                id,
                format!("its status is {}", manifest.status),
            ));
        }
        if manifest.deleted_at.is_some() {
            return Err(BackupError::NotRestorable(id, "retention deleted its file".into()));
        }
        let expected = manifest
            .fingerprint()
            .ok_or_else(|| BackupError::NotRestorable(id, "the manifest has no fingerprint".into()))?;
        let store = self.store().await?;
        if store.name != manifest.store {
            return Err(BackupError::Config(format!(
                "backup {id} is in {}, but the configured store is {}",
                manifest.store, store.name
            )));
        }
        let identity = self.identity()?;
        let tools = Tools::locate(self.config.pg_bindir.as_deref()).await?;
        if !force && !pg::is_empty(into).await? {
            return Err(BackupError::NotEmpty(database_name(into)));
        }
        tokio::fs::create_dir_all(&self.config.work_dir).await?;
        // Unique per call: a drill and an operator's restore of the same backup may overlap.
        let file = TempFile(
            self.config
                .work_dir
                .join(format!("nightshift-restore-{id}-{}.age", Uuid::new_v4().simple())),
        );
        let stored = store.download(&manifest.location, &file.0).await?;
        let recorded = manifest.sha256.clone().unwrap_or_default();
        if stored.sha256 != recorded {
            return Err(BackupError::Checksum {
                expected: recorded,
                actual: stored.sha256,
            });
        }
        // The key is checked on the header, before pg_restore touches the target.
        let path = file.0.clone();
        let plaintext = tokio::task::spawn_blocking(move || {
            let decryptor =
                age::Decryptor::new(std::io::BufReader::new(std::fs::File::open(path)?)).map_err(decrypt_error)?;
            decryptor
                .decrypt(std::iter::once(&identity as &dyn age::Identity))
                .map_err(decrypt_error)
        })
        .await
        .map_err(std::io::Error::other)??;
        let mut cmd = pg::command(&tools.pg_restore, into)?;
        // One transaction: a restore that fails half-way leaves the target as it was.
        cmd.args(["--exit-on-error", "--single-transaction", "--no-owner"]);
        if force {
            cmd.args(["--clean", "--if-exists"]);
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| BackupError::Tool(format!("cannot run {}: {e}", tools.pg_restore.display())))?;
        let stderr = tokio::spawn(read_capped(child.stderr.take()));
        let mut stdin = SyncIoBridge::new(child.stdin.take().expect("stdin is piped"));
        let mut plaintext = plaintext;
        let copied = tokio::task::spawn_blocking(move || {
            let copied = std::io::copy(&mut plaintext, &mut stdin);
            drop(stdin);
            copied
        })
        .await
        .map_err(std::io::Error::other)?;
        let status = child.wait().await?;
        let stderr = stderr.await.unwrap_or_default();
        // A decryption failure mid-stream (tampering that kept the checksum) explains
        // pg_restore's complaint about a short input better than that complaint does.
        if let Err(e) = copied
            && (e.kind() == std::io::ErrorKind::InvalidData || status.success())
        {
            return Err(BackupError::Decrypt(e.to_string()));
        }
        if !status.success() {
            return Err(BackupError::Restore {
                status: status.to_string(),
                stderr,
            });
        }
        let restored = pg::fingerprint(&tools, into).await?;
        let differences = expected.differences(&restored);
        if !differences.is_empty() {
            return Err(BackupError::Mismatch(differences));
        }
        Ok(Restored {
            backup_id: id,
            bytes: stored.size,
            tables: restored.tables.len(),
            rows: restored.tables.values().map(|t| t.rows).sum(),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The restore drill: restores `id` (the newest live backup when `None`) into a scratch
    /// database that is dropped afterwards, and records the verdict on the manifest.
    pub async fn verify(
        &self,
        db: &PgPool,
        id: Option<Uuid>,
    ) -> Result<(Uuid, Result<Restored, BackupError>), BackupError> {
        let id = match id {
            Some(id) => id,
            None => sqlx::query_scalar(
                "SELECT id FROM backups WHERE status = 'succeeded' AND deleted_at IS NULL ORDER BY started_at DESC LIMIT 1",
            )
            .fetch_optional(db)
            .await?
            .ok_or_else(|| BackupError::NotFound("to verify: none has succeeded yet".into()))?,
        };
        let server = self.config.scratch_url.as_deref().unwrap_or(&self.database_url);
        let scratch = db::with_database(server, &format!("nightshift_verify_{}", Uuid::new_v4().simple()))?;
        sqlx::Postgres::create_database(&scratch).await?;
        let result = self.restore(db, id, &scratch, false).await;
        if let Err(e) = sqlx::Postgres::force_drop_database(&scratch).await {
            tracing::warn!(error = %e, database = %database_name(&scratch), "could not drop the scratch database");
        }
        let (status, error) = match &result {
            Ok(_) => ("verified", None),
            Err(e) => ("failed", Some(e.to_string())),
        };
        metrics::counter!("nightshift_backup_verifications_total", "outcome" => status).increment(1);
        if result.is_ok() {
            metrics::gauge!("nightshift_backup_last_verified_timestamp_seconds").set(Utc::now().timestamp() as f64);
        }
        sqlx::query("UPDATE backups SET verify_status = $2, verified_at = now(), verify_error = $3 WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(error)
            .execute(db)
            .await?;
        Ok((id, result))
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

pub async fn get(db: &PgPool, id: Uuid) -> Result<Manifest, BackupError> {
    sqlx::query_as("SELECT * FROM backups WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| BackupError::NotFound(id.to_string()))
}

/// The newest backups first.
pub async fn list(db: &PgPool, limit: i64) -> Result<Vec<Manifest>, BackupError> {
    Ok(
        sqlx::query_as("SELECT * FROM backups ORDER BY started_at DESC LIMIT $1")
            .bind(limit)
            .fetch_all(db)
            .await?,
    )
}

fn decrypt_error(e: age::DecryptError) -> BackupError {
    match e {
        age::DecryptError::NoMatchingKeys => BackupError::WrongKey,
        other => BackupError::Decrypt(other.to_string()),
    }
}

/// The database name of a URL, for messages that must not show its password.
fn database_name(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.path().trim_start_matches('/').to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A tool's stderr, at most 16 KiB of it: enough to say what went wrong.
async fn read_capped(stderr: Option<ChildStderr>) -> String {
    let mut out = Vec::new();
    if let Some(s) = stderr {
        let _ = s.take(16 * 1024).read_to_end(&mut out).await;
    }
    String::from_utf8_lossy(&out).trim().to_string()
}

/// A download removed whatever happens.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A `Write` that hands 1 MiB chunks to the async upload.
struct ChunkSender {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

const CHUNK: usize = 1 << 20;

impl ChunkSender {
    fn new(tx: mpsc::Sender<Bytes>) -> Self {
        ChunkSender {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped"))
    }
}

impl Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}

/// Tells the operators, once per (what, backup), by e-mail: a failed backup is a page.
async fn alert_operators(env: &JobEnv, what: &str, backup: &str, error: &str) {
    use nightshift_catalog::email::{self, NewEmail};
    let database = database_name(&env.backups.database_url);
    let vars = json!({ "what": what, "backup_id": backup, "database": database, "error": error });
    for to in env.operator_emails.iter() {
        let key = format!("backup_failed:{what}:{backup}:{to}");
        let mail = NewEmail {
            key: &key,
            template: "backup_failed",
            to,
            vars: &vars,
        };
        if let Err(e) = email::enqueue(&env.db, &env.queues, mail, &env.mail_domain).await {
            tracing::error!(error = %e, to = %to, "could not queue the backup alert");
        }
    }
}

impl Handler for Run {
    async fn run(env: &JobEnv, job: &Job, _p: RunPayload) -> Outcome {
        let backups = &env.backups;
        match backups.take(&env.db).await {
            Ok(m) => {
                let pruned = match backups.store().await {
                    Ok(store) => backups.prune(&env.db, &store).await,
                    Err(e) => Err(e),
                };
                // The backup is safe either way; a failed prune is retried by tomorrow's.
                let pruned = pruned.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "retention failed; it runs again after the next backup");
                    Vec::new()
                });
                Outcome::Succeeded(Some(
                    json!({ "backup_id": m.id, "size_bytes": m.size_bytes, "sha256": m.sha256, "pruned": pruned })
                        .to_string(),
                ))
            }
            Err(BackupError::Busy) => Outcome::Snooze {
                reason: "another backup is running".into(),
                after: Duration::from_secs(60),
            },
            Err(e) => failed(env, job, "backup", &job.id, e).await,
        }
    }
}

/// A failure a retry cannot fix, or the last attempt's, is dead and pages the operators; any
/// other is retried.
async fn failed(env: &JobEnv, job: &Job, what: &str, backup: &str, e: BackupError) -> Outcome {
    if e.is_permanent() || job.attempt >= job.max_attempts {
        alert_operators(env, what, backup, &e.to_string()).await;
        Outcome::Dead(e.to_string())
    } else {
        Outcome::retry(e.to_string())
    }
}

impl Handler for Verify {
    async fn run(env: &JobEnv, job: &Job, p: VerifyPayload) -> Outcome {
        // Either the drill ran and gave its verdict, or it could not run at all.
        let (backup, verdict) = match env.backups.verify(&env.db, p.backup_id).await {
            Ok((id, verdict)) => (id.to_string(), verdict),
            Err(e) => (job.id.clone(), Err(e)),
        };
        match verdict {
            Ok(r) => {
                tracing::info!(backup.id = %backup, seconds = r.seconds, "restore drill passed");
                Outcome::Succeeded(serde_json::to_string(&r).ok())
            }
            // A backup that fails the drill is the answer, not something to retry.
            Err(e) => failed(env, job, "restore drill", &backup, e).await,
        }
    }
}

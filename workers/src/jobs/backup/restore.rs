//! Restores and the restore drill: checksum, decrypt, `pg_restore` into a database, compare
//! fingerprints.
use chrono::Utc;
use nightshift_common::db;
use sqlx::{PgPool, migrate::MigrateDatabase};
use tokio_util::io::SyncIoBridge;
use uuid::Uuid;

use super::{
    BackupError, Backups, Restored,
    error::decrypt_error,
    get,
    pg::{self, Tools},
    service::database_name,
    stream::{TempFile, read_capped},
};

impl Backups {
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
        if !pg::is_empty(into).await? {
            if !force {
                return Err(BackupError::NotEmpty(database_name(into)));
            }
            return Box::pin(self.replace(db, id, into)).await;
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

    /// A forced restore over a database that holds data: restored and verified into a new
    /// database beside it, which then takes its name. `pg_restore --clean` cannot do it (it
    /// drops a partition's inherited primary key, and `job_history` is partitioned), and a
    /// restore that fails leaves the target as it was. Sessions on the target are ended: a
    /// database is renamed only when nobody is connected.
    async fn replace(&self, db: &PgPool, id: Uuid, into: &str) -> Result<Restored, BackupError> {
        let name = database_name(into);
        let suffix = Uuid::new_v4().simple().to_string();
        let fresh = format!("{name}_restoring_{}", &suffix[..8]);
        let fresh_url = db::with_database(into, &fresh)?;
        sqlx::Postgres::create_database(&fresh_url).await?;
        let restored = match self.restore(db, id, &fresh_url, false).await {
            Ok(restored) => restored,
            Err(e) => {
                let _ = db::drop_database(&fresh_url).await;
                return Err(e);
            }
        };
        let quoted = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
        let replaced = quoted(&format!("{name}_replaced_{}", &suffix[..8]));
        let admin = db::connect(&db::with_database(into, "postgres")?, 1).await?;
        for sql in [
            format!("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false", quoted(&name)),
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                name.replace('\'', "''")
            ),
            format!("ALTER DATABASE {} RENAME TO {replaced}", quoted(&name)),
            format!("ALTER DATABASE {} RENAME TO {}", quoted(&fresh), quoted(&name)),
            format!("DROP DATABASE {replaced} WITH (FORCE)"),
        ] {
            sqlx::query(&sql).execute(&admin).await?;
        }
        admin.close().await;
        Ok(restored)
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
            // The error can quote the object store or pg_restore: outside text, made storable.
            Err(e) => ("failed", Some(nightshift_common::text::storable(&e.to_string(), 2000))),
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
}

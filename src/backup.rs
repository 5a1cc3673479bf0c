//! `nightshift backup ...`: take, list, check and restore database backups by hand. Each runs
//! in this process and prints what it did; state-changing ones are in the audit log.
use anyhow::bail;
use clap::Subcommand;
use nightshift_api::operations::Actor;
use nightshift_common::{Config, db};
use nightshift_workers::jobs::backup::{self, Backups};
use uuid::Uuid;

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Take a backup now (the same as the nightly `backup.run`, retention included).
    Run,
    /// The newest backups with their size, checksum and restore-drill verdict.
    List {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Restore a backup (the newest by default) into a scratch database and compare it with
    /// the source as of the dump.
    Verify { id: Option<Uuid> },
    /// Restore a backup into a database, then check it against the manifest.
    Restore {
        id: Uuid,
        /// The database to restore into (it must exist).
        #[arg(long)]
        into: String,
        /// Restore over a database that is not empty (objects in the backup are dropped first).
        #[arg(long)]
        force: bool,
    },
    /// Print a new age identity for NIGHTSHIFT_BACKUP_KEY (keep a copy offline: without it no
    /// backup can be restored).
    Keygen,
}

pub async fn run(config: &Config, command: BackupCommand) -> anyhow::Result<()> {
    if let BackupCommand::Keygen = command {
        let (identity, recipient) = backup::keygen();
        println!("# public key: {recipient}");
        println!("NIGHTSHIFT_BACKUP_KEY={identity}");
        return Ok(());
    }
    let pool = db::connect(&config.database_url, 2).await?;
    let backups = Backups::from_config(config);
    match command {
        BackupCommand::Keygen => unreachable!("handled above"),
        BackupCommand::Run => {
            let result = backups.take(&pool).await;
            let detail = match &result {
                Ok(m) => serde_json::json!({ "backup_id": m.id, "size_bytes": m.size_bytes }),
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            };
            Actor::cli().record(&pool, "backup.run", "database", detail).await;
            let m = result?;
            let pruned = backups.prune(&pool, &backups.store().await?).await?;
            println!(
                "backup {} stored at {}/{} ({} bytes, sha256 {}); retention deleted {}",
                m.id,
                m.store,
                m.location,
                m.size_bytes.unwrap_or(0),
                m.sha256.as_deref().unwrap_or("-"),
                pruned.len()
            );
        }
        BackupCommand::List { limit } => {
            println!(
                "{:<36}  {:<9}  {:<20}  {:>12}  {:<8}  {:<10}",
                "id", "status", "started", "bytes", "drill", "file"
            );
            for m in backup::list(&pool, limit).await? {
                println!(
                    "{:<36}  {:<9}  {:<20}  {:>12}  {:<8}  {:<10}",
                    m.id,
                    m.status,
                    m.started_at.format("%Y-%m-%d %H:%M:%S"),
                    m.size_bytes.map(|b| b.to_string()).unwrap_or_else(|| "-".into()),
                    m.verify_status.as_deref().unwrap_or("-"),
                    if m.deleted_at.is_some() { "deleted" } else { "kept" },
                );
                if let Some(e) = m.error.as_deref().or(m.verify_error.as_deref()) {
                    println!("    {e}");
                }
            }
        }
        BackupCommand::Verify { id } => {
            let (id, result) = backups.verify(&pool, id).await?;
            let detail = serde_json::json!({ "backup_id": id, "ok": result.is_ok() });
            Actor::cli()
                .record(&pool, "backup.verify", &id.to_string(), detail)
                .await;
            let r = result?;
            println!(
                "backup {id} verified: {} bytes restored into a scratch database in {:.1}s; {} tables, {} rows match the source as of the dump",
                r.bytes, r.seconds, r.tables, r.rows
            );
        }
        BackupCommand::Restore { id, into, force } => {
            if url::Url::parse(&into).is_err() {
                bail!("--into must be a database URL like postgres://user@host/name");
            }
            let result = backups.restore(&pool, id, &into, force).await;
            let detail = serde_json::json!({ "force": force, "ok": result.is_ok() });
            Actor::cli()
                .record(&pool, "backup.restore", &id.to_string(), detail)
                .await;
            let r = result?;
            println!(
                "backup {id} restored in {:.1}s: {} tables, {} rows, matching the source as of the dump",
                r.seconds, r.tables, r.rows
            );
        }
    }
    Ok(())
}

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
use std::time::Duration;

use nightshift_catalog::backup::{Run, RunPayload, Verify, VerifyPayload};
use nightshift_queue::{Job, Outcome};
use serde_json::json;

use super::{Handler, JobEnv};

mod error;
mod manifest;
pub mod pg;
mod restore;
pub mod retention;
mod service;
pub mod store;
mod stream;

pub use error::BackupError;
pub use manifest::{Manifest, Restored, get, list};
use service::database_name;
pub use service::{Backups, keygen};

/// Tells the operators, once per (what, backup), by e-mail: a failed backup is a page.
async fn alert_operators(env: &JobEnv, what: &str, backup: &str, error: &str) {
    use nightshift_catalog::email::{self, NewEmail};
    let database = database_name(&env.backups.database_url);
    let vars = json!({ "what": what, "backup_id": backup, "database": database, "error": error });
    for (i, to) in env.operator_emails.iter().enumerate() {
        let key = format!("backup_failed:{what}:{backup}:{to}");
        let mail = NewEmail {
            key: &key,
            template: "backup_failed",
            to,
            vars: &vars,
        };
        if let Err(e) = email::enqueue(&env.db, &env.queues, mail, &env.mail_domain).await {
            // The operator by position in NIGHTSHIFT_OPERATOR_EMAILS: an address is personal
            // data and stays out of the log.
            tracing::error!(error = %e, operator = i, "could not queue the backup alert");
        }
    }
}

impl Handler for Run {
    async fn run(env: &JobEnv, job: &Job, _p: RunPayload) -> Outcome {
        let backups = &env.backups;
        let progress = super::progress::Progress::of(env, job);
        progress.report(0, "dumping, encrypting and storing the database").await;
        match backups.take(&env.db).await {
            Ok(m) => {
                progress.report(90, "applying retention").await;
                let pruned = match backups.store().await {
                    Ok(store) => backups.prune(&env.db, &store).await,
                    Err(e) => Err(e),
                };
                // The backup is safe either way; a failed prune is retried by tomorrow's.
                let pruned = pruned.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "retention failed; it runs again after the next backup");
                    Vec::new()
                });
                progress.report(100, "done").await;
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
        let progress = super::progress::Progress::of(env, job);
        progress
            .report(0, "restoring the backup into a scratch database and comparing")
            .await;
        let (backup, verdict) = match env.backups.verify(&env.db, p.backup_id).await {
            Ok((id, verdict)) => (id.to_string(), verdict),
            Err(e) => (job.id.clone(), Err(e)),
        };
        match verdict {
            Ok(r) => {
                tracing::info!(backup.id = %backup, seconds = r.seconds, "restore drill passed");
                progress.report(100, "restored and matched").await;
                Outcome::Succeeded(serde_json::to_string(&r).ok())
            }
            // A backup that fails the drill is the answer, not something to retry.
            Err(e) => failed(env, job, "restore drill", &backup, e).await,
        }
    }
}

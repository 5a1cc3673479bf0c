//! What can go wrong with a backup or a restore, and which failures a retry cannot fix.
use uuid::Uuid;

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
    pub(super) fn is_permanent(&self) -> bool {
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

pub(super) fn decrypt_error(e: age::DecryptError) -> BackupError {
    match e {
        age::DecryptError::NoMatchingKeys => BackupError::WrongKey,
        other => BackupError::Decrypt(other.to_string()),
    }
}

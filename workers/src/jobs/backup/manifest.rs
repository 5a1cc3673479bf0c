//! The manifest: one row of `backups` per backup, with the fingerprint a restore is checked
//! against.
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, types::Json};
use uuid::Uuid;

use super::{
    BackupError,
    pg::{self, Fingerprint},
};

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
    pub(super) fn fingerprint(&self) -> Option<Fingerprint> {
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

//! Where backups live: a local directory or an S3-compatible bucket, behind object_store's one
//! interface. Uploads are multipart and streamed; a local upload is staged and renamed into
//! place on completion, so a half-written backup never has the final name.
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use nightshift_common::config::BackupStore;
use object_store::{ObjectStore, WriteMultipart, aws::AmazonS3Builder, local::LocalFileSystem, path::Path};
use sha2::{Digest, Sha256};
use tokio::{io::AsyncWriteExt, sync::mpsc};

use super::BackupError;

/// Parts in flight per upload: with 8 MiB parts, at most ~16 MiB of a backup is in memory.
const PART_SIZE: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// `file:///var/lib/nightshift/backups` or `s3://bucket/prefix`: recorded on each backup.
    pub name: String,
    prefix: String,
}

/// What an upload wrote.
pub struct Stored {
    pub size: u64,
    pub sha256: String,
}

impl Store {
    pub async fn open(config: &BackupStore) -> Result<Store, BackupError> {
        match config {
            BackupStore::Local(dir) => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| {
                    BackupError::Config(format!("cannot create the backup directory {}: {e}", dir.display()))
                })?;
                let fs = LocalFileSystem::new_with_prefix(dir)?;
                let dir = tokio::fs::canonicalize(dir).await?;
                Ok(Store {
                    inner: Arc::new(fs),
                    name: format!("file://{}", dir.display()),
                    prefix: String::new(),
                })
            }
            BackupStore::S3 {
                bucket,
                endpoint,
                region,
                prefix,
                credentials,
            } => {
                // Without keys, object_store asks the instance's role (or web identity).
                let mut b = AmazonS3Builder::new().with_bucket_name(bucket).with_region(region);
                if let Some((id, secret)) = credentials {
                    b = b
                        .with_access_key_id(id)
                        .with_secret_access_key(secrecy::ExposeSecret::expose_secret(secret));
                }
                if let Some(e) = endpoint {
                    b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
                }
                let prefix = prefix.trim_matches('/').to_string();
                Ok(Store {
                    inner: Arc::new(b.build()?),
                    name: format!("s3://{bucket}/{prefix}"),
                    prefix,
                })
            }
        }
    }

    /// The object key for a new backup: dated, so a listing of the store reads as history.
    pub fn location_for(&self, id: uuid::Uuid, at: chrono::DateTime<chrono::Utc>) -> String {
        let key = format!("{}/{id}.dump.age", at.format("%Y/%m/%d"));
        if self.prefix.is_empty() {
            key
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// Uploads what arrives on `chunks` until the sender closes it, hashing as it goes. The
    /// caller decides whether what arrived is complete: `commit` finishes the upload, dropping
    /// the returned guard without it aborts.
    pub async fn upload(&self, location: &str, mut chunks: mpsc::Receiver<Bytes>) -> Result<Upload, BackupError> {
        let upload = self.inner.put_multipart(&Path::from(location)).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let (mut size, mut hasher) = (0u64, Sha256::new());
        while let Some(chunk) = chunks.recv().await {
            size += chunk.len() as u64;
            hasher.update(&chunk);
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(e.into());
            }
            writer.put(chunk);
        }
        Ok(Upload {
            writer,
            stored: Stored {
                size,
                sha256: hex::encode(hasher.finalize()),
            },
        })
    }

    /// Copies the object to `file`, returning its size and SHA-256.
    pub async fn download(&self, location: &str, file: &std::path::Path) -> Result<Stored, BackupError> {
        let mut stream = self.inner.get(&Path::from(location)).await?.into_stream();
        let mut out = tokio::fs::File::create(file).await?;
        let (mut size, mut hasher) = (0u64, Sha256::new());
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        Ok(Stored {
            size,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    /// Deletes an object; one already gone is not an error (a retried prune).
    pub async fn delete(&self, location: &str) -> Result<(), BackupError> {
        match self.inner.delete(&Path::from(location)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether an object exists (tests and listings).
    pub async fn exists(&self, location: &str) -> Result<bool, BackupError> {
        match self.inner.head(&Path::from(location)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// A finished stream of parts not yet committed.
pub struct Upload {
    writer: WriteMultipart,
    pub stored: Stored,
}

impl Upload {
    pub async fn commit(self) -> Result<Stored, BackupError> {
        self.writer.finish().await?;
        Ok(self.stored)
    }

    pub async fn abort(self) {
        if let Err(e) = self.writer.abort().await {
            tracing::warn!(error = %e, "aborting a backup upload failed; the store may hold an orphaned part");
        }
    }
}

//! The keyring: the API's token signing keys in PostgreSQL, sealed under a master key from the
//! environment, rotated in one transaction, and reloaded by every process within seconds of a
//! rotation (Redis pub/sub, and a periodic reload should a message be lost).
//!
//! Key material never leaves this module except as `RingKey`s for `TokenKeys`; it is never
//! logged, listed or returned by any route.
use std::time::Duration;

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretBox, SecretSlice, SecretString};
use sqlx::PgPool;

use crate::auth::{RingKey, TokenKeys};

/// The Redis channel a rotation is announced on (under the deployment's key prefix).
pub fn channel(prefix: &str) -> String {
    format!("{prefix}:keyring")
}

/// How often a process reloads the keyring without being told.
pub const RELOAD_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("NIGHTSHIFT_MASTER_KEY must be 64 hex characters (32 random bytes)")]
    MasterKey,
    #[error(
        "signing key `{0}` does not open with this master key: the keyring was sealed with another \
         NIGHTSHIFT_MASTER_KEY; set that one (or, for a throwaway database, delete its signing_keys rows)"
    )]
    Unseal(String),
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
}

/// The key that seals signing keys at rest.
pub struct MasterKey(SecretBox<[u8; 32]>);

impl MasterKey {
    pub fn from_hex(hex_key: &SecretString) -> Result<Self, KeyringError> {
        let bytes = hex::decode(hex_key.expose_secret().trim()).map_err(|_| KeyringError::MasterKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyringError::MasterKey)?;
        Ok(MasterKey(SecretBox::new(Box::new(key))))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.0.expose_secret().into())
    }

    /// nonce || ciphertext, bound to `kid` so a sealed secret cannot be moved to another row.
    fn seal(&self, kid: &str, secret: &[u8]) -> Vec<u8> {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: kid.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts any message under 64 GiB");
        [nonce.as_slice(), &sealed].concat()
    }

    fn open(&self, kid: &str, sealed: &[u8]) -> Result<SecretSlice<u8>, KeyringError> {
        let unseal = || KeyringError::Unseal(kid.to_string());
        let (nonce, ciphertext) = sealed.split_at_checked(12).ok_or_else(unseal)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| unseal())?;
        let secret = self
            .cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| unseal())?;
        Ok(SecretSlice::from(secret))
    }
}

fn new_kid() -> String {
    format!("k{}", Utc::now().format("%Y%m%d%H%M%S%3f"))
}

async fn insert_active(conn: &mut sqlx::PgConnection, master: &MasterKey) -> Result<String, sqlx::Error> {
    let kid = new_kid();
    let secret: [u8; 32] = rand::random();
    sqlx::query("INSERT INTO signing_keys (kid, status, sealed) VALUES ($1, 'active', $2)")
        .bind(&kid)
        .bind(master.seal(&kid, &secret))
        .execute(conn)
        .await?;
    Ok(kid)
}

/// Makes a first key if the keyring has none active. Safe to race: the unique index lets one
/// insert win.
pub async fn ensure_active(db: &PgPool, master: &MasterKey) -> Result<(), KeyringError> {
    let mut tx = db.begin().await?;
    sqlx::query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let has: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM signing_keys WHERE status = 'active')")
        .fetch_one(&mut *tx)
        .await?;
    if !has {
        let kid = insert_active(&mut tx, master).await?;
        tracing::info!(kid, "keyring: first signing key created");
    }
    tx.commit().await?;
    Ok(())
}

/// Rotates: a new active key; the old one verifies for `grace` more; keys past their grace
/// are retired. One transaction: a crash half-way leaves the keyring as it was.
pub async fn rotate(db: &PgPool, master: &MasterKey, grace: Duration) -> Result<String, KeyringError> {
    let mut tx = db.begin().await?;
    // Rotations queue behind each other instead of racing on the unique index.
    sqlx::query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE signing_keys SET status = 'retired' WHERE status = 'previous' AND retire_after < now()")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE signing_keys SET status = 'previous', retire_after = now() + make_interval(secs => $1)
         WHERE status = 'active'",
    )
    .bind(grace.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    let kid = insert_active(&mut tx, master).await?;
    tx.commit().await?;
    tracing::info!(kid, grace_secs = grace.as_secs(), "keyring rotated");
    Ok(kid)
}

/// How old the active key is; `None` without one.
pub async fn active_age(db: &PgPool) -> Result<Option<Duration>, KeyringError> {
    let created: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT created_at FROM signing_keys WHERE status = 'active'")
            .fetch_optional(db)
            .await?;
    Ok(created.map(|c| (nightshift_queue::clock::now() - c).to_std().unwrap_or_default()))
}

/// The keys that may verify now: the active one and those within their grace, unsealed.
pub async fn load(db: &PgPool, master: &MasterKey) -> Result<Vec<RingKey>, KeyringError> {
    type Row = (String, String, Vec<u8>, Option<DateTime<Utc>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT kid, status, sealed, retire_after FROM signing_keys
         WHERE status = 'active' OR (status = 'previous' AND retire_after > now())",
    )
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(kid, status, sealed, retire_after)| {
            Ok(RingKey {
                secret: master.open(&kid, &sealed)?,
                active: status == "active",
                kid,
                retire_after,
            })
        })
        .collect()
}

/// Every key's public facts, for operators: (kid, status, created, retire after).
pub async fn list(db: &PgPool) -> Result<Vec<(String, String, DateTime<Utc>, Option<DateTime<Utc>>)>, KeyringError> {
    Ok(
        sqlx::query_as("SELECT kid, status, created_at, retire_after FROM signing_keys ORDER BY created_at")
            .fetch_all(db)
            .await?,
    )
}

/// Token keys from the keyring, making the first key if there is none.
pub async fn token_keys(db: &PgPool, master: &MasterKey) -> Result<TokenKeys, KeyringError> {
    ensure_active(db, master).await?;
    Ok(TokenKeys::from_keyring(&load(db, master).await?)?)
}

/// Reloads `keys` from the keyring now.
pub async fn reload(db: &PgPool, master: &MasterKey, keys: &TokenKeys) -> Result<(), KeyringError> {
    keys.replace(&load(db, master).await?)?;
    Ok(())
}

/// Tells every process to reload (after a rotation).
pub async fn announce(conn: &mut nightshift_queue::RedisConn, prefix: &str) -> redis::RedisResult<()> {
    redis::cmd("PUBLISH")
        .arg(channel(prefix))
        .arg(Utc::now().timestamp_millis())
        .query_async::<i64>(conn)
        .await
        .map(|_| ())
}

/// Keeps `keys` current until the process ends: on every announcement, and every
/// `RELOAD_EVERY` in case one was missed (Redis down, a restart between).
pub async fn follow(db: PgPool, master: std::sync::Arc<MasterKey>, keys: TokenKeys, redis_url: String, prefix: String) {
    let channel = channel(&prefix);
    let reload_now = |why: &'static str| {
        let (db, master, keys) = (db.clone(), master.clone(), keys.clone());
        async move {
            match reload(&db, &master, &keys).await {
                Ok(()) => tracing::debug!(why, kid = ?keys.signing_kid(), "keyring reloaded"),
                Err(e) => tracing::warn!(error = %e, why, "keyring reload failed; keeping the current keys"),
            }
        }
    };
    let announcements = async {
        loop {
            let session = async {
                let client = nightshift_queue::pubsub_client(&redis_url).map_err(|e| e.to_string())?;
                let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
                pubsub.subscribe(&channel).await.map_err(|e| e.to_string())?;
                let mut messages = pubsub.on_message();
                while messages.next().await.is_some() {
                    reload_now("announced").await;
                }
                Ok::<_, String>(())
            };
            if let Err(e) = session.await {
                tracing::debug!(error = %e, "keyring subscription failed; resubscribing");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let periodic = async {
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        loop {
            tick.tick().await;
            reload_now("periodic").await;
        }
    };
    tokio::join!(announcements, periodic);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_hex(&SecretString::from("11".repeat(32))).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_under_its_kid_and_master_key() {
        let sealed = master().seal("k1", b"secret bytes");
        assert_eq!(master().open("k1", &sealed).unwrap().expose_secret(), b"secret bytes");
        assert!(master().open("k2", &sealed).is_err(), "moved to another kid");
        let other = MasterKey::from_hex(&SecretString::from("22".repeat(32))).unwrap();
        assert!(other.open("k1", &sealed).is_err(), "another master key");
        assert_ne!(master().seal("k1", b"secret bytes"), sealed, "a fresh nonce each time");
    }

    #[test]
    fn a_master_key_must_be_32_bytes_of_hex() {
        for bad in ["", "zz".repeat(32).as_str(), "11".repeat(31).as_str()] {
            assert!(MasterKey::from_hex(&SecretString::from(bad)).is_err());
        }
    }
}

//! `secrets.rotate`: the daily check that rotates the API's token signing key once it is older
//! than the rotation period (or at once with `force`), then tells every process to reload.
//! Tokens signed by the old key keep working for the grace period; nobody is logged out and
//! nothing restarts.
use std::{sync::Arc, time::Duration};

use nightshift_catalog::secrets::{Rotate, RotatePayload};
use nightshift_common::{Config, keyring};
use nightshift_queue::{Job, Outcome};
use serde_json::json;

use super::{Handler, JobEnv};

/// What the workers need to rotate: present only when NIGHTSHIFT_MASTER_KEY is set.
pub struct Rotation {
    master: keyring::MasterKey,
    period: Duration,
    grace: Duration,
    prefix: String,
}

impl Rotation {
    pub fn from_config(config: &Config) -> Result<Option<Arc<Self>>, keyring::KeyringError> {
        let Some(hex) = &config.master_key else {
            return Ok(None);
        };
        Ok(Some(Arc::new(Rotation {
            master: keyring::MasterKey::from_hex(hex)?,
            period: config.key_rotation,
            grace: config.key_grace,
            prefix: config.queue.prefix.clone(),
        })))
    }
}

impl Handler for Rotate {
    async fn run(env: &JobEnv, _job: &Job, p: RotatePayload) -> Outcome {
        let Some(r) = &env.rotation else {
            return Outcome::Succeeded(Some(
                json!({ "rotated": false, "reason": "no keyring: NIGHTSHIFT_MASTER_KEY is not set" }).to_string(),
            ));
        };
        let result = async {
            keyring::ensure_active(&env.db, &r.master).await?;
            let age = keyring::active_age(&env.db).await?.unwrap_or_default();
            if !p.force && age < r.period {
                return Ok(json!({ "rotated": false, "active_key_age_days": age.as_secs() / 86_400 }));
            }
            let kid = keyring::rotate(&env.db, &r.master, r.grace).await?;
            Ok::<_, keyring::KeyringError>(json!({ "rotated": true, "kid": kid }))
        }
        .await;
        match result {
            Ok(v) => {
                if v["rotated"] == true
                    && let Err(e) = keyring::announce(&mut env.redis.clone(), &r.prefix).await
                {
                    // The rotation stands; instances pick it up on their periodic reload.
                    tracing::warn!(error = %e, "could not announce the rotation");
                }
                Outcome::Succeeded(Some(v.to_string()))
            }
            Err(e) => Outcome::retry(format!("rotating the signing key: {e}")),
        }
    }
}

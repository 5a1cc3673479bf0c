//! The token keyring, for operators (`admin`): list keys (never their secrets) and rotate.
use axum::{Json, extract::State};
use chrono::Utc;
use nightshift_common::{auth::Scope, keyring};
use serde_json::{Value, json};

use crate::{AppState, auth::Caller, error::ApiError};

fn master(state: &AppState) -> Result<&keyring::MasterKey, ApiError> {
    state.keyring.as_deref().ok_or_else(|| {
        ApiError::Conflict(
            "tokens are signed with NIGHTSHIFT_JWT_SECRET: set NIGHTSHIFT_MASTER_KEY to use the keyring".into(),
        )
    })
}

fn keyring_error(e: keyring::KeyringError) -> ApiError {
    match e {
        keyring::KeyringError::Database(e) => e.into(),
        other => ApiError::Internal(Box::new(other)),
    }
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Admin)?;
    master(&state)?;
    let keys: Vec<Value> = keyring::list(&state.db)
        .await
        .map_err(keyring_error)?
        .into_iter()
        .map(|(kid, status, created_at, retire_after)| {
            json!({ "kid": kid, "status": status, "created_at": created_at, "retire_after": retire_after })
        })
        .collect();
    Ok(Json(json!({ "keys": keys, "signing_kid": state.keys.signing_kid() })))
}

/// Rotates now; every instance signs with the new key within seconds, and tokens signed by the
/// old one keep working for the grace period.
pub async fn rotate(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::Admin)?;
    let master = master(&state)?;
    let kid = keyring::rotate(&state.db, master, state.key_grace)
        .await
        .map_err(keyring_error)?;
    keyring::reload(&state.db, master, &state.keys)
        .await
        .map_err(keyring_error)?;
    if let Err(e) = keyring::announce(&mut state.redis.clone(), &state.key_prefix).await {
        // The others reload on their own within a period, or on the first token they don't know.
        tracing::warn!(error = %e, "could not announce the rotation");
    }
    let grace = chrono::Duration::from_std(state.key_grace).unwrap_or(chrono::Duration::MAX);
    Ok(Json(
        json!({ "kid": kid, "previous_valid_until": Utc::now().checked_add_signed(grace) }),
    ))
}

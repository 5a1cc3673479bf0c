//! The token keyring, for operators (`admin`): list keys (never their secrets) and rotate.
use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use nightshift_common::{auth::Scope, keyring};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{AppState, auth::Caller, error::ApiError, openapi::Errors};

#[derive(Serialize, ToSchema)]
pub struct Keys {
    keys: Vec<Key>,
    /// The key new tokens are signed with.
    signing_kid: Option<String>,
}

/// A signing key, never its secret.
#[derive(Serialize, ToSchema)]
pub struct Key {
    kid: String,
    /// active, previous or retired.
    status: String,
    created_at: DateTime<Utc>,
    /// Until when a previous key still verifies tokens.
    retire_after: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct Rotated {
    /// The new signing key.
    kid: String,
    /// Until when tokens signed by the previous key are accepted.
    previous_valid_until: Option<DateTime<Utc>>,
}

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

/// The keyring's keys (scope `admin`; 409 without NIGHTSHIFT_MASTER_KEY).
#[utoipa::path(
    get, path = "/v1/admin/keys", tag = "admin",
    responses((status = 200, description = "The keys", body = Keys), Errors),
    security(("bearer" = ["admin"]))
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Keys>, ApiError> {
    caller.require(Scope::Admin)?;
    master(&state)?;
    let keys = keyring::list(&state.db)
        .await
        .map_err(keyring_error)?
        .into_iter()
        .map(|(kid, status, created_at, retire_after)| Key {
            kid,
            status,
            created_at,
            retire_after,
        })
        .collect();
    Ok(Json(Keys {
        keys,
        signing_kid: state.keys.signing_kid(),
    }))
}

/// Rotates now; every instance signs with the new key within seconds, and tokens signed by the
/// old one keep working for the grace period.
#[utoipa::path(
    post, path = "/v1/admin/keys/rotate", tag = "admin",
    responses((status = 200, description = "Rotated", body = Rotated), Errors),
    security(("bearer" = ["admin"]))
)]
pub async fn rotate(State(state): State<AppState>, caller: Caller) -> Result<Json<Rotated>, ApiError> {
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
    Ok(Json(Rotated {
        kid,
        previous_valid_until: nightshift_queue::clock::now().checked_add_signed(grace),
    }))
}

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};
use nightshift_common::{
    auth::{AuthError, Claims, Scope},
    keyring,
    rate::RateLimit,
};

use crate::{AppState, error::ApiError};

/// The verified caller. Extracting it is what authenticates a route; `require` checks scopes.
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.0.has(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scope.as_str()))
        }
    }

    pub fn is_admin(&self) -> bool {
        self.0.has(Scope::Admin)
    }

    pub fn subject(&self) -> &str {
        &self.0.sub
    }
}

/// The API's rate limits, built once from the configuration.
#[derive(Debug, Clone)]
pub struct Limits {
    per_client: RateLimit,
    per_ip: RateLimit,
    /// Failed authentications per IP, the API's and the dashboard's sign-ins alike.
    pub(crate) auth_failures: RateLimit,
}

impl Limits {
    pub fn new(prefix: &str, c: &nightshift_common::config::ApiLimits) -> Self {
        Limits {
            per_client: RateLimit::per_minute(prefix, "api:client", c.per_client.0, c.per_client.1),
            per_ip: RateLimit::per_minute(prefix, "api:ip", c.per_ip.0, c.per_ip.1),
            auth_failures: RateLimit::per_minute(prefix, "api:authfail", c.auth_failures.0, c.auth_failures.1),
        }
    }
}

/// Takes one request from a limit. Without Redis the limit is not enforced: enqueuing fails
/// on its own then, and reads should not.
pub(crate) async fn within(state: &AppState, limit: &RateLimit, subject: &str) -> Result<(), ApiError> {
    match limit.take(&mut state.redis.clone(), subject).await {
        Ok(None) => Ok(()),
        Ok(Some(wait)) => {
            metrics::counter!("nightshift_api_rate_limited_total").increment(1);
            Err(ApiError::TooManyRequests(wait))
        }
        Err(e) => {
            tracing::warn!(error = %e, "rate limiter unavailable; request let through");
            Ok(())
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The peer address: a proxy in front would need its forwarded header trusted here.
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        if let Some(ip) = &ip {
            within(state, &state.limits.per_ip, ip).await?;
        }
        match verify(parts, state).await {
            Ok(claims) => {
                if let Some(actor) = parts.extensions.get::<crate::audit::Actor>() {
                    actor.set(&claims.sub);
                }
                within(state, &state.limits.per_client, &claims.sub).await?;
                Ok(Caller(claims))
            }
            Err(e) => {
                if let Some(ip) = &ip {
                    within(state, &state.limits.auth_failures, ip).await?;
                }
                Err(e)
            }
        }
    }
}

async fn verify(parts: &Parts, state: &AppState) -> Result<Claims, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("missing Authorization: Bearer token"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized("Authorization must be `Bearer <token>`"))?;
    let mut verified = state.keys.verify(token);
    // A key this instance has not loaded yet: another instance may have just rotated. Reload
    // (at most once a second, so unknown kids cannot hammer the database) and look again.
    if let (Err(AuthError::UnknownKey(_)), Some(master)) = (&verified, &state.keyring)
        && reload_allowed(state)
    {
        if let Err(e) = keyring::reload(&state.db, master, &state.keys).await {
            tracing::warn!(error = %e, "keyring reload failed");
        }
        verified = state.keys.verify(token);
    }
    verified.map_err(|e| {
        tracing::info!(reason = %e, "token rejected");
        ApiError::Unauthorized("invalid or expired token")
    })
}

fn reload_allowed(state: &AppState) -> bool {
    let mut last = state.last_kid_reload.lock().unwrap_or_else(|e| e.into_inner());
    match *last {
        Some(t) if t.elapsed() < std::time::Duration::from_secs(1) => false,
        _ => {
            *last = Some(std::time::Instant::now());
            true
        }
    }
}

use axum::{extract::FromRequestParts, http::request::Parts};
use nightshift_common::auth::{Claims, Scope};

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

    pub fn subject(&self) -> &str {
        &self.0.sub
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
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
        let claims = state.keys.verify(token).map_err(|e| {
            tracing::info!(reason = %e, "token rejected");
            ApiError::Unauthorized("invalid or expired token")
        })?;
        Ok(Caller(claims))
    }
}

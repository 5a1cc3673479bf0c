//! API tokens: HS256 JWTs with required expiry, issuer and audience, and space-separated
//! scopes. The algorithm is pinned: a token claiming any other (`none`, RS256) is refused.
//! The keys that sign and verify tokens are in `keys`, the scopes they grant in `scope`.
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

mod keys;
mod scope;

pub use keys::{RingKey, TokenKeys};
pub use scope::{Scope, parse_scopes};

pub const ISSUER: &str = "nightshift";
pub const AUDIENCE: &str = "nightshift-api";
pub const MIN_SECRET_BYTES: usize = 32;
/// Longest token lifetime issued: a year.
pub const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

/// The longest token subject: a service's name, not a document.
pub const MAX_SUBJECT: usize = 128;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub scope: String,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub aud: String,
    /// Not valid before (optional); checked against the corrected clock as `exp` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The one user a user-confined token may act on; absent on service tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<i64>,
    /// The key that signed the token (its header's kid), filled in by `verify`.
    #[serde(skip)]
    pub kid: Option<String>,
}

impl Claims {
    pub fn has(&self, scope: Scope) -> bool {
        self.scope.split_whitespace().any(|s| s == scope.as_str())
    }

    /// The confinement rule, checked before anything else at issue and at verification: a
    /// token confined to a user is that user's app, and never holds an operator scope (it would
    /// reach schedules, the dashboard and every caller's jobs), whoever signed it.
    pub fn check_confinement(&self) -> Result<(), AuthError> {
        if let Some(user) = self.user {
            if user <= 0 {
                return Err(AuthError::User);
            }
            if let Some(s) = Scope::ALL.into_iter().find(|s| s.is_operator() && self.has(*s)) {
                return Err(AuthError::ConfinedOperator(s.as_str()));
            }
        }
        Ok(())
    }
}

/// A subject is 1 to 128 printable characters without spaces ([`crate::text::printable`]): it
/// names the caller in audit rows and logs, and namespaces its keys. Checked at issue and at
/// verification.
pub fn check_subject(sub: &str) -> Result<(), AuthError> {
    if sub.is_empty() || sub.len() > MAX_SUBJECT || sub.chars().any(|c| !crate::text::printable(c) || c.is_whitespace())
    {
        return Err(AuthError::Subject);
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error(
        "unknown scope `{0}` (known: jobs:read, jobs:write, reminders:read, reminders:write, emails:send, admin, finance:read, finance:write)"
    )]
    UnknownScope(String),
    #[error("token lifetime must be between 1 second and 366 days")]
    Lifetime,
    #[error("the token's key `{0}` is not in the keyring")]
    UnknownKey(String),
    #[error("the token's key `{0}` was rotated out and its grace period is over")]
    RetiredKey(String),
    #[error("the keyring has no active key")]
    NoActiveKey,
    #[error("the subject must be 1 to {MAX_SUBJECT} printable characters without spaces")]
    Subject,
    #[error("a token's user must be a positive user id")]
    User,
    #[error("a token confined to a user cannot hold the operator scope `{0}`")]
    ConfinedOperator(&'static str),
    #[error("the token was issued in the future or lives longer than {} days", MAX_TTL.as_secs() / 86_400)]
    IssuedAt,
}

pub fn check_secret_strength(secret: &SecretString) -> Result<(), String> {
    let n = secret.expose_secret().len();
    if n < MIN_SECRET_BYTES {
        return Err(format!("must be at least {MIN_SECRET_BYTES} bytes (got {n})"));
    }
    Ok(())
}

/// A fresh random secret for local use (`nightshift all` without a configured one).
pub fn generate_secret() -> SecretString {
    use rand::distr::{Alphanumeric, SampleString};
    SecretString::from(Alphanumeric.sample_string(&mut rand::rng(), 48))
}

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};
use nightshift_common::{
    auth::{AuthError, Claims, Scope},
    keyring,
    rate::{self, Check, RateLimit},
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

    /// Whether what was submitted by subject `by` (for `user`, if confined) is this caller's to
    /// see: an admin sees all, a client what its subject submitted, a user-confined token only
    /// its own user's. The one rule for jobs and batches: what it refuses is answered as missing.
    pub fn owns(&self, by: Option<&str>, user: Option<i64>) -> bool {
        self.is_admin() || (by == Some(self.subject()) && self.user().is_none_or(|u| user == Some(u)))
    }

    pub fn subject(&self) -> &str {
        &self.0.sub
    }

    /// The user a user-confined token acts for; `None` for service tokens.
    pub fn user(&self) -> Option<i64> {
        self.0.user
    }

    /// Whether the caller may act on `user`: service tokens on any, a confined token on its own.
    pub fn may_act_on(&self, user: i64) -> bool {
        self.0.user.is_none_or(|u| u == user)
    }

    /// The namespace of this caller's keys (idempotency keys, e-mail keys), so that no two
    /// callers' (subject, key) pairs meet, and none meets the platform's own keys (which start
    /// `~platform:`, and so with `~` and a letter). A service token whose subject has no `:` or `~`
    /// keeps the plain subject (the form keys had before this one, so keys stored then still
    /// resolve); every other caller gets `~<length>:<subject>:<user or ->`, which starts with
    /// `~` and so can never equal a plain one, and whose length prefix and digit-only user
    /// part make it unambiguous.
    pub fn key_namespace(&self) -> String {
        key_namespace(&self.0.sub, self.0.user)
    }
}

fn key_namespace(sub: &str, user: Option<i64>) -> String {
    match user {
        None if !sub.contains([':', '~']) => sub.to_string(),
        _ => format!(
            "~{}:{sub}:{}",
            sub.len(),
            user.map_or_else(|| "-".to_string(), |u| u.to_string())
        ),
    }
}

/// The API's rate limits, built once from the configuration.
#[derive(Debug, Clone)]
pub struct Limits {
    pub(crate) per_client: RateLimit,
    per_ip: RateLimit,
    /// Failed authentications per IP, the API's and the dashboard's sign-ins alike.
    pub(crate) auth_failures: RateLimit,
    /// Open batches per caller.
    pub(crate) open_batches: u32,
}

impl Limits {
    pub fn new(prefix: &str, c: &nightshift_common::config::ApiLimits) -> Self {
        Limits {
            per_client: RateLimit::per_minute(prefix, "api:client", c.per_client.0, c.per_client.1),
            per_ip: RateLimit::per_minute(prefix, "api:ip", c.per_ip.0, c.per_ip.1),
            auth_failures: RateLimit::per_minute(prefix, "api:authfail", c.auth_failures.0, c.auth_failures.1),
            open_batches: c.open_batches,
        }
    }
}

/// Takes one request from a limit. Without Redis the limit is not enforced: enqueuing fails
/// on its own then, and reads should not.
pub(crate) async fn within(state: &AppState, limit: &RateLimit, subject: &str) -> Result<(), ApiError> {
    if !state.redis_watch.answering() {
        return Ok(());
    }
    limited(limit.take(&mut state.redis.clone(), subject).await)
}

/// Takes `n` events of a budget at once (the jobs of a batch), all or none.
pub(crate) async fn within_n(state: &AppState, limit: &RateLimit, subject: &str, n: u64) -> Result<(), ApiError> {
    if !state.redis_watch.answering() {
        return Ok(());
    }
    limited(limit.take_n(&mut state.redis.clone(), subject, n).await)
}

/// Refuses when a failures-only budget is already spent, without spending it: a locked-out
/// address gets no more guesses verified.
pub(crate) async fn not_locked_out(state: &AppState, limit: &RateLimit, subject: &str) -> Result<(), ApiError> {
    if !state.redis_watch.answering() {
        return Ok(());
    }
    limited(limit.peek(&mut state.redis.clone(), subject).await)
}

fn limited(outcome: redis::RedisResult<Option<std::time::Duration>>) -> Result<(), ApiError> {
    match outcome {
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
        if let Some(ip) = &ip
            && state.redis_watch.answering()
        {
            // The address's rate and its failed-sign-in budget (peeked, not spent), in one
            // round trip.
            let checks = [
                Check {
                    limit: &state.limits.per_ip,
                    subject: ip,
                    cost: 1,
                    peek: false,
                },
                Check {
                    limit: &state.limits.auth_failures,
                    subject: ip,
                    cost: 1,
                    peek: true,
                },
            ];
            limited(
                rate::check_all(&mut state.redis.clone(), &checks)
                    .await
                    .map(|refused| refused.map(|(_, wait)| wait)),
            )?;
        }
        match verify(parts, state).await {
            Ok(claims) => {
                if let Some(actor) = parts.extensions.get::<crate::audit::AuditedSubject>() {
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
    let token = bearer(header).ok_or(ApiError::Unauthorized("Authorization must be `Bearer <token>`"))?;
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
        // The reason can quote the token (its kid, a claim's value): bounded and escaped.
        tracing::info!(reason = %nightshift_common::telemetry::untrusted(&e.to_string()), "token rejected");
        ApiError::Unauthorized("invalid or expired token")
    })
}

/// The token of `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 9110).
pub(crate) fn bearer(header: &axum::http::HeaderValue) -> Option<&str> {
    let (scheme, token) = header.to_str().ok()?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_needs_a_token() {
        let h = |s: &'static str| axum::http::HeaderValue::from_static(s);
        assert_eq!(bearer(&h("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&h("bearer abc")), Some("abc"));
        assert_eq!(bearer(&h("BEARER  abc ")), Some("abc"));
        assert_eq!(bearer(&h("Basic abc")), None);
        assert_eq!(bearer(&h("Bearer ")), None);
        assert_eq!(bearer(&h("Bearerabc")), None);
    }

    #[test]
    fn no_two_callers_share_a_key_namespace() {
        // The collision of the attack: subject `svc:x` with key `k1`, subject `svc` with `x:k1`.
        let full = |sub: &str, user: Option<i64>, key: &str| format!("{}:{key}", key_namespace(sub, user));
        assert_ne!(full("svc:x", None, "k1"), full("svc", None, "x:k1"));
        assert_ne!(full("svc", Some(1), "k"), full("svc", Some(2), "k"));
        assert_ne!(full("svc", Some(1), "k"), full("svc", None, "k"));
        assert_ne!(full("~3:svc:-", None, "k"), full("svc", Some(3), "k"));
        assert_ne!(full("a:b", None, "c:d"), full("a", None, "b:c:d"));
        // A plain service subject keeps the form its keys were stored under before.
        assert_eq!(full("billing", None, "k1"), "billing:k1");
    }

    #[test]
    fn no_caller_key_is_ever_under_the_platforms_prefix() {
        use nightshift_catalog::PLATFORM_KEYS;
        let subjects = [
            "cashflow",
            "~platform",
            "~platform:x",
            "~",
            "~9",
            "platform",
            "email",
            "~1:a",
        ];
        for sub in subjects {
            for user in [None, Some(1001)] {
                for key in ["user:1001", "~platform:cashflow:user:1", "k"] {
                    let full = format!("{}:{key}", key_namespace(sub, user));
                    assert!(!full.starts_with(PLATFORM_KEYS), "{sub} {user:?} {key}: {full}");
                }
            }
        }
    }
}

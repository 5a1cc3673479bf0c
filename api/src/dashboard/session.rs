//! Operator sessions. An `admin`-scoped token is exchanged once for a random session id held
//! in an HttpOnly, SameSite=Strict cookie; Redis keeps only the id's SHA-256, so a copy of
//! Redis does not hand out sessions. Every state-changing request must carry the session's
//! CSRF token and, when the browser says where it comes from, come from this origin.
use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, header, request::Parts},
};
use cookie::{Cookie, SameSite};
use nightshift_common::auth::{Claims, Scope};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::DashError;
use crate::{ApiError, AppState};

pub const COOKIE: &str = "nightshift_session";
/// A session never outlives its token, and never lasts longer than a night shift.
const MAX_SESSION_SECS: i64 = 8 * 3600;

/// The signed-in operator, extracted from the session cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Operator {
    pub subject: String,
    pub csrf: String,
    /// The key that signed the sign-in token: the session ends when that key stops verifying.
    #[serde(default)]
    pub kid: Option<String>,
    /// Unix seconds; a "sign out everywhere" after this ends the session.
    #[serde(default)]
    pub started: i64,
}

impl Operator {
    /// The audit log's actor for what this operator does here.
    pub fn actor(&self) -> String {
        format!("dashboard:{}", self.subject)
    }

    pub fn check_csrf(&self, presented: &str) -> Result<(), DashError> {
        // Equal length first, then every byte: the comparison leaks no prefix.
        let (a, b) = (self.csrf.as_bytes(), presented.as_bytes());
        let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
        if same { Ok(()) } else { Err(DashError::Csrf) }
    }
}

fn random_hex(bytes: usize) -> String {
    let buf: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(buf)
}

fn redis_key(prefix: &str, session_id: &str) -> String {
    format!(
        "{prefix}:dashboard:session:{}",
        hex::encode(Sha256::digest(session_id.as_bytes()))
    )
}

/// When "sign out everywhere" was last pressed (Unix seconds).
fn signed_out_key(prefix: &str) -> String {
    format!("{prefix}:dashboard:signed-out-at")
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// Served over TLS (directly or behind a proxy that says so): the cookie is then Secure.
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// Checks a login token: valid, and with the `admin` scope.
pub fn admit(state: &AppState, token: &str) -> Result<Claims, DashError> {
    let claims = state.keys.verify(token.trim()).map_err(|e| {
        tracing::info!(reason = %nightshift_common::telemetry::untrusted(&e.to_string()), "dashboard login refused");
        DashError::Login("That token is not valid (expired, revoked or malformed).")
    })?;
    if !claims.has(Scope::Admin) {
        return Err(DashError::Login("That token does not have the admin scope."));
    }
    Ok(claims)
}

/// Starts a session for verified claims; returns the Set-Cookie value.
pub async fn start(state: &AppState, claims: &Claims, headers: &HeaderMap) -> Result<String, DashError> {
    let id = random_hex(32);
    let now = nightshift_queue::clock::now().timestamp();
    let op = Operator {
        subject: claims.sub.clone(),
        csrf: random_hex(32),
        kid: claims.kid.clone(),
        started: now,
    };
    let ttl = (claims.exp - now).clamp(1, MAX_SESSION_SECS);
    let value = serde_json::to_string(&op).map_err(|e| ApiError::Internal(e.to_string().into()))?;
    let mut conn = state.redis.clone();
    let _: () = conn
        .set_ex(redis_key(&state.key_prefix, &id), value, ttl as u64)
        .await
        .map_err(super::redis_error)?;
    let cookie = Cookie::build((COOKIE, id))
        .path("/dashboard")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(over_tls(headers))
        .max_age(cookie::time::Duration::seconds(ttl))
        .build();
    Ok(cookie.to_string())
}

/// Ends the session; returns the Set-Cookie value that clears the cookie.
pub async fn end(state: &AppState, headers: &HeaderMap) -> Result<String, DashError> {
    if let Some(id) = session_id(headers) {
        let mut conn = state.redis.clone();
        let _: () = conn
            .del(redis_key(&state.key_prefix, &id))
            .await
            .map_err(super::redis_error)?;
    }
    let mut cookie = Cookie::build((COOKIE, "")).path("/dashboard").http_only(true).build();
    cookie.make_removal();
    Ok(cookie.to_string())
}

/// Ends every session started until now: each is refused from its next request on.
pub async fn end_all(state: &AppState) -> Result<(), DashError> {
    let mut conn = state.redis.clone();
    // Sessions live at most MAX_SESSION_SECS, so the mark is not needed for longer.
    let _: () = conn
        .set_ex(
            signed_out_key(&state.key_prefix),
            nightshift_queue::clock::now().timestamp(),
            MAX_SESSION_SECS as u64,
        )
        .await
        .map_err(super::redis_error)?;
    Ok(())
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = DashError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, DashError> {
        let id = session_id(&parts.headers).ok_or(DashError::SignedOut)?;
        let mut conn = state.redis.clone();
        // One round trip: the session and the last "sign out everywhere".
        let (value, signed_out_at): (Option<String>, Option<i64>) = redis::pipe()
            .get(redis_key(&state.key_prefix, &id))
            .get(signed_out_key(&state.key_prefix))
            .query_async(&mut conn)
            .await
            .map_err(super::redis_error)?;
        let op: Operator = value
            .and_then(|v| serde_json::from_str(&v).ok())
            .ok_or(DashError::SignedOut)?;
        // Same second counts as before: a sign-out ends the session that pressed it.
        if signed_out_at.is_some_and(|t| op.started <= t) {
            return Err(DashError::SignedOut);
        }
        // A session is worth no more than the key that admitted it: retired, it is over.
        if !state.keys.verifies_kid(op.kid.as_deref()) {
            return Err(DashError::SignedOut);
        }
        Ok(op)
    }
}

/// A state-changing request from another site is refused before anything else happens: the
/// browser's own word (Origin, or Sec-Fetch-Site) is checked against this host. Browsers send
/// Origin on every cross-site POST; the CSRF token covers clients that send neither.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origin_must_name_this_host() {
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://localhost:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "a:1"),
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "a:1"),
            ("sec-fetch-site", "same-site")
        ])));
        // No word from the browser: the CSRF token decides.
        assert!(same_origin(&headers(&[("host", "a:1")])));
    }

    #[test]
    fn csrf_token_must_match_exactly() {
        let op = Operator {
            subject: "ops".into(),
            csrf: "abc123".into(),
            kid: None,
            started: 0,
        };
        assert!(op.check_csrf("abc123").is_ok());
        assert!(op.check_csrf("abc12").is_err());
        assert!(op.check_csrf("abc124").is_err());
        assert!(op.check_csrf("").is_err());
    }
}

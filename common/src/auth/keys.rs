// Over 400 lines: 200 of signing and verifying and, beside them, the tests of every rejection path.
//! The keys that sign and verify tokens. They sit behind one lock so that a keyring rotation
//! reaches every clone at once; issuing and verifying read them there.
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use secrecy::{ExposeSecret, SecretString};

use super::{AUDIENCE, AuthError, Claims, ISSUER, MAX_TTL, Scope, check_subject};

/// Slack on `exp`, `nbf` and `iat` for the clocks of the issuing and verifying hosts, which
/// are both corrected against Redis's (`nightshift_queue::clock`): seconds, not the skew.
const LEEWAY_SECS: i64 = 5;

/// One key tokens may be verified with; `kid` is `None` for the single secret from the
/// environment (tokens then carry no kid).
struct VerifyingKey {
    kid: Option<String>,
    key: DecodingKey,
    /// Unix seconds after which the key verifies nothing (a rotated-out key's grace end).
    until: Option<i64>,
}

struct KeySet {
    signing: (Option<String>, EncodingKey),
    verifying: Vec<VerifyingKey>,
}

/// The keys that sign and verify API tokens: one secret from the environment, or the keyring
/// (see `keyring`), which a running process swaps in place when keys rotate.
#[derive(Clone)]
pub struct TokenKeys {
    set: std::sync::Arc<std::sync::RwLock<KeySet>>,
    /// Shared: the API state (and these keys with it) is cloned for every request, and a
    /// `Validation` holds three hash sets.
    validation: std::sync::Arc<Validation>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

/// A key of the keyring, unsealed: what `TokenKeys::from_keyring` needs.
pub struct RingKey {
    pub kid: String,
    pub secret: secrecy::SecretSlice<u8>,
    pub active: bool,
    pub retire_after: Option<chrono::DateTime<chrono::Utc>>,
}

impl TokenKeys {
    fn validation() -> Validation {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud", "iat"]);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        // Times are checked in `verify` against the one clock (this process's clock corrected
        // by its offset from Redis), not by jsonwebtoken against the raw system clock: an API
        // host whose clock drifted 90 s still accepts a fresh token and refuses an expired one.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation
    }

    pub fn from_secret(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let set = KeySet {
            signing: (None, EncodingKey::from_secret(bytes)),
            verifying: vec![VerifyingKey {
                kid: None,
                key: DecodingKey::from_secret(bytes),
                until: None,
            }],
        };
        TokenKeys {
            set: std::sync::Arc::new(std::sync::RwLock::new(set)),
            validation: std::sync::Arc::new(Self::validation()),
        }
    }

    fn key_set(keys: &[RingKey]) -> Result<KeySet, AuthError> {
        let active = keys.iter().find(|k| k.active).ok_or(AuthError::NoActiveKey)?;
        Ok(KeySet {
            signing: (
                Some(active.kid.clone()),
                EncodingKey::from_secret(active.secret.expose_secret()),
            ),
            verifying: keys
                .iter()
                .map(|k| VerifyingKey {
                    kid: Some(k.kid.clone()),
                    key: DecodingKey::from_secret(k.secret.expose_secret()),
                    until: k.retire_after.map(|t| t.timestamp()),
                })
                .collect(),
        })
    }

    pub fn from_keyring(keys: &[RingKey]) -> Result<Self, AuthError> {
        Ok(TokenKeys {
            set: std::sync::Arc::new(std::sync::RwLock::new(Self::key_set(keys)?)),
            validation: std::sync::Arc::new(Self::validation()),
        })
    }

    /// Swaps in a reloaded keyring; every clone of these keys sees it at once.
    pub fn replace(&self, keys: &[RingKey]) -> Result<(), AuthError> {
        let set = Self::key_set(keys)?;
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = set;
        Ok(())
    }

    /// The kid new tokens are signed with (`None` for the environment's secret).
    pub fn signing_kid(&self) -> Option<String> {
        self.set.read().unwrap_or_else(|e| e.into_inner()).signing.0.clone()
    }

    /// A service token: it acts on any user within its scopes.
    pub fn issue(&self, sub: &str, scopes: &[Scope], ttl: Duration) -> Result<String, AuthError> {
        self.issue_for(sub, None, scopes, ttl)
    }

    /// A token; with `user`, confined to that one user.
    pub fn issue_for(
        &self,
        sub: &str,
        user: Option<i64>,
        scopes: &[Scope],
        ttl: Duration,
    ) -> Result<String, AuthError> {
        if ttl.is_zero() || ttl > MAX_TTL {
            return Err(AuthError::Lifetime);
        }
        check_subject(sub)?;
        let now = nightshift_queue::clock::now().timestamp();
        let claims = Claims {
            sub: sub.to_string(),
            scope: scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            nbf: None,
            user,
            kid: None,
        };
        claims.check_confinement()?;
        let set = self.set.read().unwrap_or_else(|e| e.into_inner());
        let mut header = Header::new(Algorithm::HS256);
        header.kid = set.signing.0.clone();
        Ok(encode(&header, &claims, &set.signing.1)?)
    }

    /// Whether tokens signed with `kid` still verify: the key is loaded and not past its grace.
    pub fn verifies_kid(&self, kid: Option<&str>) -> bool {
        let set = self.set.read().unwrap_or_else(|e| e.into_inner());
        let now = nightshift_queue::clock::now().timestamp();
        set.verifying
            .iter()
            .any(|k| k.kid.as_deref() == kid && k.until.is_none_or(|until| now <= until))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        // The header is read only to pick the key; the algorithm is pinned by `validation`.
        let kid = jsonwebtoken::decode_header(token)?.kid;
        let set = self.set.read().unwrap_or_else(|e| e.into_inner());
        let key = set
            .verifying
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| AuthError::UnknownKey(kid.clone().unwrap_or_default()))?;
        let now = nightshift_queue::clock::now().timestamp();
        if key.until.is_some_and(|until| now > until) {
            return Err(AuthError::RetiredKey(kid.unwrap_or_default()));
        }
        let mut claims = decode::<Claims>(token, &key.key, &self.validation)?.claims;
        claims.kid = kid;
        // The signature is good; still refuse what we would never have issued (confined
        // operator tokens were issued before the rule: they stop verifying).
        claims.check_confinement()?;
        check_subject(&claims.sub)?;
        if claims.exp < now - LEEWAY_SECS {
            return Err(AuthError::Invalid(
                jsonwebtoken::errors::ErrorKind::ExpiredSignature.into(),
            ));
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
            return Err(AuthError::Invalid(
                jsonwebtoken::errors::ErrorKind::ImmatureSignature.into(),
            ));
        }
        if claims.iat > now + LEEWAY_SECS || claims.exp.saturating_sub(claims.iat) > MAX_TTL.as_secs() as i64 {
            return Err(AuthError::IssuedAt);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{MAX_SUBJECT, check_secret_strength, parse_scopes};

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(&SecretString::from("k".repeat(40)))
    }

    #[test]
    fn an_issued_token_verifies_with_its_scopes() {
        let k = keys();
        let t = k
            .issue("billing", &[Scope::JobsWrite], Duration::from_secs(60))
            .unwrap();
        let c = k.verify(&t).unwrap();
        assert_eq!(c.sub, "billing");
        assert!(c.has(Scope::JobsWrite));
        assert!(!c.has(Scope::JobsRead));
    }

    #[test]
    fn a_token_signed_with_another_secret_or_expired_is_refused() {
        let other = TokenKeys::from_secret(&SecretString::from("o".repeat(40)));
        let t = other.issue("x", &[Scope::Admin], Duration::from_secs(60)).unwrap();
        assert!(keys().verify(&t).is_err());
        let k = keys();
        let now = chrono::Utc::now().timestamp();
        let expired = Claims {
            sub: "x".into(),
            scope: "admin".into(),
            iat: now - 120,
            exp: now - 60,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            nbf: None,
            user: None,
            kid: None,
        };
        let t = encode(
            &Header::new(Algorithm::HS256),
            &expired,
            &k.set.read().unwrap().signing.1,
        )
        .unwrap();
        assert!(k.verify(&t).is_err());
    }

    fn ring_key(kid: &str, byte: u8, active: bool, retire_after: Option<i64>) -> RingKey {
        RingKey {
            kid: kid.into(),
            secret: secrecy::SecretSlice::from(vec![byte; 32]),
            active,
            retire_after: retire_after.map(|s| chrono::Utc::now() + chrono::Duration::seconds(s)),
        }
    }

    #[test]
    fn a_rotated_out_key_verifies_until_its_grace_ends_and_an_unknown_kid_never() {
        let old = TokenKeys::from_keyring(&[ring_key("k1", 1, true, None)]).unwrap();
        let token = old.issue("x", &[Scope::Admin], Duration::from_secs(60)).unwrap();
        let keys = old.clone();
        keys.replace(&[ring_key("k1", 1, false, Some(60)), ring_key("k2", 2, true, None)])
            .unwrap();
        assert_eq!(old.signing_kid().as_deref(), Some("k2"), "every clone sees the swap");
        assert!(keys.verify(&token).is_ok(), "within the grace");
        let fresh = keys.issue("x", &[Scope::Admin], Duration::from_secs(60)).unwrap();
        assert!(keys.verify(&fresh).is_ok());
        keys.replace(&[ring_key("k1", 1, false, Some(-1)), ring_key("k2", 2, true, None)])
            .unwrap();
        assert!(matches!(keys.verify(&token), Err(AuthError::RetiredKey(_))));
        assert!(
            !keys.verifies_kid(Some("k1")),
            "a dashboard session from k1 ends with its grace"
        );
        assert!(keys.verifies_kid(Some("k2")));
        keys.replace(&[ring_key("k2", 2, true, None)]).unwrap();
        assert!(matches!(keys.verify(&token), Err(AuthError::UnknownKey(_))));
        assert!(!keys.verifies_kid(Some("k1")) && !keys.verifies_kid(None));
        // A token without a kid (the environment's secret) is not accepted by a keyring.
        let env = TokenKeys::from_secret(&SecretString::from("e".repeat(40)));
        let t = env.issue("x", &[Scope::Admin], Duration::from_secs(60)).unwrap();
        assert!(matches!(keys.verify(&t), Err(AuthError::UnknownKey(_))));
        assert!(matches!(
            TokenKeys::from_keyring(&[ring_key("k1", 1, false, Some(60))]),
            Err(AuthError::NoActiveKey)
        ));
    }

    #[test]
    fn an_unsigned_alg_none_token_is_refused() {
        use base64_like::b64;
        let header = b64(r#"{"alg":"none","typ":"JWT"}"#);
        let now = chrono::Utc::now().timestamp();
        let body = b64(&format!(
            r#"{{"sub":"x","scope":"admin","iat":{now},"exp":{},"iss":"nightshift","aud":"nightshift-api"}}"#,
            now + 60
        ));
        assert!(keys().verify(&format!("{header}.{body}.")).is_err());
    }

    #[test]
    fn short_secrets_and_unknown_scopes_are_rejected() {
        assert!(check_secret_strength(&SecretString::from("short")).is_err());
        assert!(matches!(
            keys().issue("x", &[Scope::Admin], Duration::from_secs(u64::MAX)),
            Err(AuthError::Lifetime)
        ));
        assert!(parse_scopes("jobs:read,root").is_err());
        assert_eq!(
            parse_scopes("jobs:read, admin").unwrap(),
            vec![Scope::JobsRead, Scope::Admin]
        );
    }

    fn signed(k: &TokenKeys, claims: &Claims) -> String {
        encode(&Header::new(Algorithm::HS256), claims, &k.set.read().unwrap().signing.1).unwrap()
    }

    fn claims(sub: &str, iat: i64, exp: i64) -> Claims {
        Claims {
            sub: sub.into(),
            scope: "admin".into(),
            iat,
            exp,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            nbf: None,
            user: None,
            kid: None,
        }
    }

    #[test]
    fn a_token_issued_in_the_future_or_for_longer_than_the_cap_is_refused_even_when_signed() {
        let k = keys();
        let now = chrono::Utc::now().timestamp();
        assert!(k.verify(&signed(&k, &claims("x", now, now + 60))).is_ok());
        let future = signed(&k, &claims("x", now + 3600, now + 7200));
        assert!(matches!(k.verify(&future), Err(AuthError::IssuedAt)));
        let forever = signed(&k, &claims("x", now, now + 10 * 366 * 86_400));
        assert!(matches!(k.verify(&forever), Err(AuthError::IssuedAt)));
        // Without iat at all: refused by the required claims.
        let mut v = serde_json::to_value(claims("x", now, now + 60)).unwrap();
        v.as_object_mut().unwrap().remove("iat");
        let no_iat = encode(&Header::new(Algorithm::HS256), &v, &k.set.read().unwrap().signing.1).unwrap();
        assert!(k.verify(&no_iat).is_err());
    }

    #[test]
    fn subjects_must_be_printable_and_bounded_at_issue_and_at_verification() {
        let k = keys();
        let ttl = Duration::from_secs(60);
        let too_long = "s".repeat(MAX_SUBJECT + 1);
        for bad in [
            "",
            "a b",
            "line\nbreak",
            "\u{1b}[31m",
            "svc\u{200b}",
            "\u{202e}cvs",
            &too_long,
        ] {
            assert!(
                matches!(k.issue(bad, &[Scope::Admin], ttl), Err(AuthError::Subject)),
                "{bad:?}"
            );
            let now = chrono::Utc::now().timestamp();
            assert!(matches!(
                k.verify(&signed(&k, &claims(bad, now, now + 60))),
                Err(AuthError::Subject)
            ));
        }
        assert!(k.issue("svc:x", &[Scope::Admin], ttl).is_ok());
        assert!(matches!(
            k.issue_for("app", Some(0), &[Scope::JobsRead], ttl),
            Err(AuthError::User)
        ));
        let t = k.issue_for("app", Some(1001), &[Scope::JobsRead], ttl).unwrap();
        assert_eq!(k.verify(&t).unwrap().user, Some(1001));
    }

    #[test]
    fn a_token_confined_to_a_user_never_holds_an_operator_scope_at_issue_or_at_verification() {
        let k = keys();
        let ttl = Duration::from_secs(60);
        assert!(matches!(
            k.issue_for("app", Some(1001), &[Scope::JobsRead, Scope::Admin], ttl),
            Err(AuthError::ConfinedOperator("admin"))
        ));
        // One signed before the rule (or by hand with the secret) stops verifying.
        let now = chrono::Utc::now().timestamp();
        let mut c = claims("app", now, now + 60);
        c.user = Some(1001);
        c.scope = "jobs:read admin".into();
        assert!(matches!(
            k.verify(&signed(&k, &c)),
            Err(AuthError::ConfinedOperator("admin"))
        ));
        // Every other scope may be confined, and a service token may be an operator.
        let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| !s.is_operator()).collect();
        let t = k.issue_for("app", Some(1001), &others, ttl).unwrap();
        assert_eq!(k.verify(&t).unwrap().user, Some(1001));
        assert!(k.issue("svc", &Scope::ALL, ttl).is_ok());
    }

    mod base64_like {
        /// URL-safe base64 without padding, enough to forge a test token.
        pub fn b64(s: &str) -> String {
            const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let b = s.as_bytes();
            let mut out = String::new();
            for c in b.chunks(3) {
                let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
                for i in 0..=c.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                }
            }
            out
        }
    }
}

//! `Nightshift-Signature: t=<unix secs>,v1=<hex>`: HMAC-SHA256 of `"<t>.<body>"` under the
//! endpoint's secret, and the check a receiver makes.
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signature's timestamp may be from the receiver's clock.
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// The HMAC-SHA256 of `"<t>.<body>"` under `secret`, before finalizing.
fn mac(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header for `body` at `t`, one `v1=` per secret.
pub fn signature_header(secrets: &[&str], t: i64, body: &[u8]) -> String {
    let mut h = format!("t={t}");
    for s in secrets {
        h.push_str(",v1=");
        h.push_str(&hex::encode(mac(s, t, body).finalize().into_bytes()));
    }
    h
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("malformed signature header")]
    Malformed,
    #[error("timestamp outside the tolerance window (replayed or clock skew)")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// What a receiver runs: accepts when one `v1=` is the HMAC of `"<t>.<body>"` under `secret`
/// and `t` is within `tolerance` of `now` (unix seconds).
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance: Duration) -> Result<(), VerifyError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| VerifyError::Malformed)?),
            Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| VerifyError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::Malformed)?;
    if sigs.is_empty() {
        return Err(VerifyError::Malformed);
    }
    if now.abs_diff(t) > tolerance.as_secs() {
        return Err(VerifyError::Stale);
    }
    // verify_slice compares in constant time.
    let matches = sigs.iter().any(|sig| mac(secret, t, body).verify_slice(sig).is_ok());
    if matches { Ok(()) } else { Err(VerifyError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_secret_only() {
        let body = br#"{"id":"k"}"#;
        let h = signature_header(&["s1"], 1_700_000_000, body);
        assert_eq!(verify("s1", &h, body, 1_700_000_010, TOLERANCE), Ok(()));
        assert_eq!(
            verify("s2", &h, body, 1_700_000_010, TOLERANCE),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify("s1", &h, br#"{"id":"K"}"#, 1_700_000_010, TOLERANCE),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn an_old_or_future_timestamp_is_refused() {
        let h = signature_header(&["s"], 1_700_000_000, b"x");
        assert_eq!(verify("s", &h, b"x", 1_700_000_301, TOLERANCE), Err(VerifyError::Stale));
        assert_eq!(verify("s", &h, b"x", 1_699_999_699, TOLERANCE), Err(VerifyError::Stale));
        // Moving the timestamp forward breaks the signature: it is signed too.
        let forged = h.replace("t=1700000000", "t=1700000400");
        assert_eq!(
            verify("s", &forged, b"x", 1_700_000_400, TOLERANCE),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn during_a_rotation_either_secret_verifies() {
        let h = signature_header(&["new", "old"], 10, b"x");
        assert_eq!(verify("new", &h, b"x", 10, TOLERANCE), Ok(()));
        assert_eq!(verify("old", &h, b"x", 10, TOLERANCE), Ok(()));
        assert_eq!(verify("x", "t=10", b"x", 10, TOLERANCE), Err(VerifyError::Malformed));
    }
}

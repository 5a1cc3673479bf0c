//! JSON request bodies parsed so every failure is a JSON error that names its field.
use axum::{body::Bytes, extract::rejection::BytesRejection, http::StatusCode};
use serde::{Deserialize, de::DeserializeOwned};

use crate::{MAX_BODY_BYTES, error::ApiError};

/// Parses a body; an empty body is `{}` when `empty_ok`.
pub fn json<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>, empty_ok: bool) -> Result<T, ApiError> {
    json_within(body, empty_ok, MAX_BODY_BYTES)
}

/// As [`json`], for a route whose body limit is `limit` bytes.
pub fn json_within<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    empty_ok: bool,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(limit),
        _ => ApiError::BadRequest {
            field: "body".into(),
            message: rejection.body_text(),
        },
    })?;
    let text: &[u8] = if empty_ok && bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    // One JSON value and nothing after it, before anything else is said of the body: trailing
    // bytes would otherwise be ignored, and a NUL behind them would escape the check below.
    let mut whole = serde_json::Deserializer::from_slice(text);
    serde::de::IgnoredAny::deserialize(&mut whole)
        .and_then(|_| whole.end())
        .map_err(|e| ApiError::BadRequest {
            field: "body".into(),
            message: format!("malformed JSON (one JSON value, nothing after it): {e}"),
        })?;
    // PostgreSQL stores no NUL character in text or jsonb: refuse it here, by name, before
    // the typed parse (which could fail first on another field).
    if may_hold_nul(text)
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(text)
        && let Some(path) = nul_path(&value, String::new())
    {
        return Err(ApiError::invalid(path, "must not contain the NUL character (\\u0000)"));
    }
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| typed_error(e, "body", ""))
}

/// Parses one part of a body already read as JSON; fields are named from `at` (`jobs[3]`).
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value, at: &str) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| typed_error(e, at, &format!("{at}.")))
}

/// A typed parse's failure as a 400 (not JSON) or a 422 naming the field (`whole` for the
/// value itself, `prefix` before a field's path).
fn typed_error(e: serde_path_to_error::Error<serde_json::Error>, whole: &str, prefix: &str) -> ApiError {
    let field = match e.path().to_string() {
        p if p == "." => whole.to_string(),
        p => format!("{prefix}{p}"),
    };
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        ApiError::BadRequest {
            field: "body".into(),
            message: format!("malformed JSON: {inner}"),
        }
    } else {
        // serde names a missing or unknown field in its message; the path names a mistyped one.
        ApiError::invalid(field, inner.to_string())
    }
}

/// JSON can only carry NUL escaped: a cheap scan spares the second parse for every other body.
fn may_hold_nul(text: &[u8]) -> bool {
    text.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"))
}

/// The path (`a.b[2]`) of the first string or key holding a NUL, if any.
fn nul_path(v: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    let join = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    match v {
        Value::String(s) if s.contains('\0') => Some(if at.is_empty() { "body".into() } else { at }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_path(x, format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, x)| {
            if k.contains('\0') {
                Some(join(k))
            } else {
                nul_path(x, join(k))
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_anywhere_is_refused_by_its_path() {
        let body = |s: &str| Ok(Bytes::from(s.to_string()));
        let err = json::<serde_json::Value>(body(r#"{"title": "a\u0000b"}"#), false).unwrap_err();
        assert!(
            matches!(&err, ApiError::Invalid { field, .. } if field == "title"),
            "{err:?}"
        );
        let err = json::<serde_json::Value>(body(r#"{"p": {"xs": ["ok", "\u0000"]}}"#), false).unwrap_err();
        assert!(
            matches!(&err, ApiError::Invalid { field, .. } if field == "p.xs[1]"),
            "{err:?}"
        );
        // Bytes after the value are refused, and so is a NUL hidden before them.
        let err = json::<serde_json::Value>(body(r#"{"m": "a\u0000b"}x"#), false).unwrap_err();
        assert!(
            matches!(&err, ApiError::BadRequest { field, .. } if field == "body"),
            "{err:?}"
        );
        assert!(
            json::<serde_json::Value>(body("{} \n"), false).is_ok(),
            "whitespace is not trailing data"
        );
        // An escaped backslash followed by "u0000" is not a NUL.
        assert!(json::<serde_json::Value>(body(r#"{"t": "\\u0000"}"#), false).is_ok());
    }
}

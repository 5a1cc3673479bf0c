//! JSON request bodies parsed so every failure is a JSON error that names its field.
use axum::{body::Bytes, extract::rejection::BytesRejection, http::StatusCode};
use serde::de::DeserializeOwned;

use crate::{MAX_BODY_BYTES, error::ApiError};

/// Parses a body; an empty body is `{}` when `empty_ok`.
pub fn json<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>, empty_ok: bool) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(MAX_BODY_BYTES),
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
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = match e.path().to_string() {
            p if p == "." => "body".to_string(),
            p => p,
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
    })
}

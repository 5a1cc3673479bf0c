//! Job texts as PostgreSQL accepts them. Anything a job carries is recorded: what PostgreSQL
//! cannot hold is replaced or recorded as NULL, counted and logged, never a failed write.
use std::borrow::Cow;

/// PostgreSQL text cannot hold NUL (U+0000), and job texts can come from anywhere (a webhook
/// receiver's error body): NUL becomes U+FFFD rather than failing the insert.
pub(super) fn safe_text<'a>(id: &str, field: &'static str, text: &'a str) -> Cow<'a, str> {
    if !text.contains('\0') {
        return Cow::Borrowed(text);
    }
    made_safe(id, field);
    Cow::Owned(text.replace('\0', "\u{FFFD}"))
}

/// The value itself is never logged: it is the job's data, and it can be anything.
fn made_safe(id: &str, field: &'static str) {
    metrics::counter!("nightshift_history_sanitized_total", "field" => field).increment(1);
    tracing::warn!(job.id = %id, field, "NUL character replaced by U+FFFD in job history");
}

/// The queue carries any text; one value that is not JSON would fail its whole batch's
/// `::jsonb` cast. Such a value is recorded as NULL. jsonb refuses the `\u0000` escape too:
/// a NUL in a string or key becomes U+FFFD.
pub(super) fn json_or_none<'a>(id: &str, field: &'static str, text: &'a str) -> Option<Cow<'a, str>> {
    if may_hold_nul(text)
        && let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text)
    {
        return Some(if replace_nul(&mut value) {
            made_safe(id, field);
            Cow::Owned(value.to_string())
        } else {
            Cow::Borrowed(text)
        });
    }
    match serde_json::from_str::<serde::de::IgnoredAny>(text) {
        Ok(_) => Some(Cow::Borrowed(text)),
        Err(e) => {
            tracing::warn!(job.id = %id, field, error = %e, "not JSON; recorded as null in history");
            None
        }
    }
}

/// JSON can only carry NUL escaped: a cheap scan spares the second parse for every other value.
fn may_hold_nul(text: &str) -> bool {
    text.as_bytes().windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"))
}

/// Replaces NUL in every string and key; whether there was any.
fn replace_nul(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    fn in_text(s: &mut String) -> bool {
        let found = s.contains('\0');
        if found {
            *s = s.replace('\0', "\u{FFFD}");
        }
        found
    }
    match value {
        Value::String(s) => in_text(s),
        Value::Array(items) => items.iter_mut().fold(false, |found, x| replace_nul(x) | found),
        Value::Object(map) => {
            let mut found = false;
            *map = std::mem::take(map)
                .into_iter()
                .map(|(mut k, mut x)| {
                    found |= in_text(&mut k) | replace_nul(&mut x);
                    (k, x)
                })
                .collect();
            found
        }
        _ => false,
    }
}

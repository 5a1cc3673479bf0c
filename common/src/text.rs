//! The rules for text the platform takes from others, in one place: what a name or key may
//! contain ([`printable`]), and what text from outside (a webhook receiver's body, an SMTP
//! reply, an object store's error) becomes before it is stored ([`storable`]).
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Whether `c` may appear in a subject or a key: not a control character (C0, C1, DEL) and
/// not a format character (Unicode's Cf: zero-width spaces and joiners, bidirectional
/// overrides such as U+202E, the byte-order mark), which would make two keys that look alike
/// differ, or make a key read backwards in a log or the dashboard.
pub fn printable(c: char) -> bool {
    !c.is_control() && c.general_category() != GeneralCategory::Format
}

/// Outside text as it can be stored and shown: at most `max_chars` characters, NUL (which
/// PostgreSQL text cannot hold, and which used to fail the write that records an outcome)
/// replaced by U+FFFD.
pub fn storable(text: &str, max_chars: usize) -> String {
    text.chars()
        .take(max_chars)
        .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
        .collect()
}

/// The start of an outside answer's bytes as storable text (invalid UTF-8 replaced).
pub fn storable_bytes(bytes: &[u8], max_chars: usize) -> String {
    storable(&String::from_utf8_lossy(bytes), max_chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_format_characters_are_not_printable() {
        for c in [
            '\0',
            '\n',
            '\u{7f}',
            '\u{85}',
            '\u{200b}',
            '\u{200d}',
            '\u{202e}',
            '\u{2066}',
            '\u{feff}',
            '\u{e0001}',
        ] {
            assert!(!printable(c), "{c:?}");
        }
        for c in ['a', 'é', '日', '-', ':', '~', '😀'] {
            assert!(printable(c), "{c:?}");
        }
    }

    #[test]
    fn storable_text_has_no_nul_and_is_bounded_in_characters() {
        assert_eq!(storable("a\0b", 10), "a\u{FFFD}b");
        assert_eq!(storable("ééé", 2), "éé");
        assert_eq!(storable_bytes(b"ok \xff\0", 10), "ok \u{FFFD}\u{FFFD}");
    }
}

//! Text the databases can store. PostgreSQL refuses U+0000 in `text` and `jsonb` (Rust strings cannot hold
//! anything else it would refuse), so every input is checked once, where it is parsed — JSON bodies, path
//! segments, query parameters, decoded cursors, headers used as data — and refused with a problem that names the
//! field. Code behind the extractors never sees a NUL.

use crate::i18n::Text;
use crate::problem::FieldError;

pub const INVALID_CHARACTER: &str = "invalid_character";

/// Whether the databases can store `text`.
pub fn storable(text: &str) -> bool {
    !text.contains('\0')
}

fn message() -> Text {
    Text::fixed(
        "Der Text enthält ein unzulässiges Zeichen (U+0000).",
        "The text contains a character that is not allowed (U+0000).",
    )
}

/// The field error for a JSON member with text that cannot be stored.
pub fn at_pointer(pointer: impl Into<String>) -> FieldError {
    FieldError::at_pointer(pointer, INVALID_CHARACTER, message())
}

/// The field error for a query or path parameter, or a header, with text that cannot be stored.
pub fn at_parameter(name: impl Into<String>) -> FieldError {
    FieldError::at_parameter(name, INVALID_CHARACTER, message())
}

/// The first place in a JSON document (member names included) with text that cannot be stored, as a pointer.
pub fn first_unstorable(value: &serde_json::Value) -> Option<String> {
    fn walk(value: &serde_json::Value, pointer: &mut String) -> bool {
        match value {
            serde_json::Value::String(s) => !storable(s),
            serde_json::Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = pointer.len();
                crate::http::push_token(pointer, &i.to_string());
                let found = walk(item, pointer);
                if !found {
                    pointer.truncate(len);
                }
                found
            }),
            serde_json::Value::Object(members) => members.iter().any(|(key, item)| {
                let len = pointer.len();
                crate::http::push_token(pointer, key);
                let found = !storable(key) || walk(item, pointer);
                if !found {
                    pointer.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut pointer = String::new();
    walk(value, &mut pointer).then_some(pointer)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_the_first_nul_with_its_pointer() {
        assert_eq!(
            first_unstorable(&json!({"a": "ok", "b": [1, "x\u{0}y"]})),
            Some("/b/1".into())
        );
        assert_eq!(first_unstorable(&json!({"a\u{0}": 1})), Some("/a\u{0}".into()));
        assert_eq!(
            first_unstorable(&json!({"a/b": {"c": "\u{0}"}})),
            Some("/a~1b/c".into())
        );
        assert_eq!(first_unstorable(&json!({"a": ["fine", {"b": true}]})), None);
    }
}

//! Request fields whose type is checked after the body has been read, so that one answer lists every bad field.
//!
//! A strict `serde` type in a request body stops deserialisation at the first value that does not fit and the
//! client learns about one mistake at a time. `Checked<T>` accepts any JSON value, remembers whether it was a `T`,
//! and the service turns a misfit into a [`FieldError`] at the member's pointer next to its other checks.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::problem::FieldError;

/// A value type that says how a misfit is reported.
pub trait FieldType: Sized {
    fn invalid(pointer: &str) -> FieldError;
}

/// A request member parsed as `T`, or the value that was not one. In the OpenAPI document the member has `T`'s
/// schema (`#[schema(value_type = T)]` on the field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked<T> {
    Valid(T),
    Invalid(serde_json::Value),
}

impl<T: FieldType> Checked<T> {
    /// The value, or `None` with a field error recorded at `pointer`.
    pub fn check(self, errors: &mut Vec<FieldError>, pointer: &str) -> Option<T> {
        match self {
            Checked::Valid(value) => Some(value),
            Checked::Invalid(_) => {
                errors.push(T::invalid(pointer));
                None
            }
        }
    }
}

impl<T> From<T> for Checked<T> {
    fn from(value: T) -> Self {
        Checked::Valid(value)
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(match T::deserialize(&value) {
            Ok(valid) => Checked::Valid(valid),
            Err(_) => Checked::Invalid(value),
        })
    }
}

/// Writes back what was received, so that a body hashes the same whether its members fit or not.
impl<T: Serialize> Serialize for Checked<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Checked::Valid(value) => value.serialize(serializer),
            Checked::Invalid(raw) => raw.serialize(serializer),
        }
    }
}

impl<T: Default> Default for Checked<T> {
    fn default() -> Self {
        Checked::Valid(T::default())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::Checked;
    use crate::Lang;

    #[derive(Deserialize)]
    struct Body {
        a: Checked<Lang>,
        b: Checked<Lang>,
    }

    #[test]
    fn every_misfit_is_reported_not_only_the_first() {
        let body: Body = serde_json::from_str(r#"{"a": "fr", "b": 7}"#).unwrap();
        let mut errors = Vec::new();
        assert_eq!(body.a.check(&mut errors, "/a"), None);
        assert_eq!(body.b.check(&mut errors, "/b"), None);
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.clone().unwrap()).collect();
        assert_eq!(pointers, ["/a", "/b"]);
        assert!(errors.iter().all(|e| e.code == "not_allowed"));
    }

    #[test]
    fn a_fitting_value_passes() {
        let body: Body = serde_json::from_str(r#"{"a": "en", "b": "de"}"#).unwrap();
        let mut errors = Vec::new();
        assert_eq!(body.a.check(&mut errors, "/a"), Some(Lang::En));
        assert_eq!(body.b.check(&mut errors, "/b"), Some(Lang::De));
        assert!(errors.is_empty());
    }
}

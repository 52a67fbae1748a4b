//! Identifiers. New objects get a UUIDv7: sortable by creation time, unguessable enough to be handed out, and the
//! same text on every backend. [`Id<T>`] carries the kind of object it names, so an id of one kind cannot be passed
//! where another is wanted; the marker type lives in the crate that owns the entity.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A fresh identifier in its canonical text form (lower-case, hyphenated).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// The id of an object of kind `T`, stored as text.
#[derive(diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct Id<T> {
    value: String,
    kind: PhantomData<fn() -> T>,
}

impl<T> Id<T> {
    /// A fresh id for a new object.
    pub fn new() -> Id<T> {
        Id::from_string(new_id())
    }

    /// An id as stored or received (whether such an object exists is for the caller to find out).
    pub fn from_string(value: impl Into<String>) -> Id<T> {
        Id {
            value: value.into(),
            kind: PhantomData,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }

    pub fn into_string(self) -> String {
        self.value
    }
}

impl<T> Default for Id<T> {
    fn default() -> Self {
        Id::new()
    }
}

impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        Id::from_string(self.value.clone())
    }
}

impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T> Eq for Id<T> {}

impl<T> PartialOrd for Id<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Id<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}

impl<T> Hash for Id<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl<T> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.value)
    }
}

impl<T> fmt::Display for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl<T> AsRef<str> for Id<T> {
    fn as_ref(&self) -> &str {
        &self.value
    }
}

impl<T> Serialize for Id<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.value)
    }
}

impl<'de, T> Deserialize<'de> for Id<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Id::from_string)
    }
}

impl<T, DB> ToSql<Text, DB> for Id<T>
where
    DB: Backend,
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.value.as_str().to_sql(out)
    }
}

impl<T, DB> FromSql<Text, DB> for Id<T>
where
    DB: Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        String::from_sql(bytes).map(Id::from_string)
    }
}

impl<T> utoipa::PartialSchema for Id<T> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .into()
    }
}

impl<T> utoipa::ToSchema for Id<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    enum Thing {}

    #[test]
    fn ids_are_unique_and_sort_by_creation() {
        let a = super::new_id();
        let b = super::new_id();
        assert_ne!(a, b);
        assert!(a < b, "{a} should sort before {b}");
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn typed_ids_are_plain_text_outside() {
        let id: Id<Thing> = Id::from_string("abc");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"abc\"");
        let back: Id<Thing> = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(back, id);
        assert!(Id::<Thing>::new() < Id::<Thing>::new());
    }
}

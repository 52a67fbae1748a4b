//! Opaque identifiers. New objects get a UUIDv7: sortable by creation time, unguessable enough to be handed out,
//! and the same text on every backend.

/// A fresh identifier in its canonical text form (lower-case, hyphenated).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_sort_by_creation() {
        let a = super::new_id();
        let b = super::new_id();
        assert_ne!(a, b);
        assert!(a < b, "{a} should sort before {b}");
        assert_eq!(a.len(), 36);
    }
}

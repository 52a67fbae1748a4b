//! One registry of every module that keeps personal data, so that the GDPR export (Art. 15) and erasure
//! (Art. 17) can never forget a module. Each module registers a section; the account service runs all sections in
//! one transaction. A test checks that every table with an `account_id` column is claimed by some section.

use amtsweg_kernel::Timestamp;
use std::sync::Arc;

use serde::Serialize;

use crate::{DbConnection, DbError};

/// Data kept despite an erasure request, with the legal basis that requires keeping it (Art. 17(3) GDPR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retained {
    pub section: &'static str,
    pub category: &'static str,
    pub legal_basis: &'static str,
}

pub trait PersonalData: Send + Sync {
    /// Name of the section in the export.
    fn section(&self) -> &'static str;
    /// The tables whose rows about an account this section exports and erases.
    fn tables(&self) -> &'static [&'static str];
    /// Everything this module stores about the account.
    fn export(&self, conn: &mut DbConnection, account_id: &str) -> Result<serde_json::Value, DbError>;
    /// Erases what no retention duty covers; returns what is kept and why.
    fn erase(
        &self,
        conn: &mut DbConnection,
        account_id: &str,
        now: Timestamp,
    ) -> Result<Vec<Retained>, DbError>;
}

#[derive(Clone, Default)]
pub struct PersonalDataRegistry {
    sections: Vec<Arc<dyn PersonalData>>,
}

impl PersonalDataRegistry {
    pub fn new(sections: Vec<Arc<dyn PersonalData>>) -> Self {
        Self { sections }
    }

    pub fn sections(&self) -> &[Arc<dyn PersonalData>] {
        &self.sections
    }

    pub fn tables(&self) -> Vec<&'static str> {
        self.sections
            .iter()
            .flat_map(|s| s.tables().iter().copied())
            .collect()
    }

    pub fn export(&self, conn: &mut DbConnection, account_id: &str) -> Result<serde_json::Value, DbError> {
        let mut out = serde_json::Map::new();
        for section in &self.sections {
            out.insert(section.section().to_owned(), section.export(conn, account_id)?);
        }
        Ok(serde_json::Value::Object(out))
    }

    pub fn erase(
        &self,
        conn: &mut DbConnection,
        account_id: &str,
        now: Timestamp,
    ) -> Result<Vec<Retained>, DbError> {
        let mut retained = Vec::new();
        // Later-registered modules depend on earlier ones (the account comes first), so erase in reverse.
        for section in self.sections.iter().rev() {
            retained.extend(section.erase(conn, account_id, now)?);
        }
        Ok(retained)
    }
}

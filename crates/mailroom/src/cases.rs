//! What the mailroom asks about cases. The applications module answers (the composition root injects it); the
//! mailroom never reads case tables itself.

use amtsweg_db::{DbConnection, DbError};

/// A case as the mailroom needs it for routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseInfo {
    /// The case's id (the application id).
    pub case_ref: String,
    pub case_number: Option<String>,
    pub procedure_id: String,
    /// The unit handling it.
    pub unit_id: String,
    /// The applicant (a person's account).
    pub applicant: String,
    /// The organisation applied for, if any.
    pub organisation: Option<String>,
}

impl CaseInfo {
    /// The Postfach the case's messages go to: the organisation's, where it applied, else the applicant's.
    pub fn mailbox(&self) -> String {
        match &self.organisation {
            Some(organisation) => format!("organisation:{organisation}"),
            None => format!("account:{}", self.applicant),
        }
    }
}

pub trait CaseDirectory: Send + Sync {
    /// A submitted case `person` may see (their own, or their organisation's); `None` otherwise.
    fn case_for_citizen(
        &self,
        conn: &mut DbConnection,
        case_ref: &str,
        person: &str,
    ) -> Result<Option<CaseInfo>, DbError>;

    /// A submitted case by its id, for staff routes (which check the unit themselves).
    fn case(&self, conn: &mut DbConnection, case_ref: &str) -> Result<Option<CaseInfo>, DbError>;

    /// A case by its case number (Aktenzeichen), for routing inbound mail.
    fn case_by_number(&self, conn: &mut DbConnection, case_number: &str)
    -> Result<Option<CaseInfo>, DbError>;
}

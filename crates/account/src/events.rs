//! The account service's life-cycle events. They carry ids and states only — no names, no addresses.

use amtsweg_db::{DbConnection, DbError};
use amtsweg_events::EventType;
use amtsweg_kernel::Timestamp;
use serde::Serialize;

const SOURCE: &str = "urn:amtsweg:account";

pub const ACCOUNT_CREATED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.account.created.v1",
};
pub const ACCOUNT_VERIFIED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.account.verified.v1",
};
pub const ACCOUNT_DELETED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.account.deleted.v1",
};
pub const CONSENT_GRANTED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.account.consent_granted.v1",
};
pub const CONSENT_REVOKED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.account.consent_revoked.v1",
};

/// `data` of the account events.
#[derive(Debug, Serialize)]
pub struct AccountState<'a> {
    pub account_id: &'a str,
    /// `citizen` or `staff`.
    pub realm: &'a str,
    /// `person` or `organisation`.
    pub kind: &'a str,
    /// `pending`, `active` or `deactivated`.
    pub status: &'a str,
    /// How it came about: `registration`, `eid`, `administrator`, `representative` …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<&'a str>,
}

/// `data` of the consent events.
#[derive(Debug, Serialize)]
pub struct ConsentState<'a> {
    pub account_id: &'a str,
    pub consent_id: &'a str,
    /// `procedure` or `authority`.
    pub recipient_kind: &'a str,
    pub recipient_id: &'a str,
    pub attributes: Vec<&'a str>,
}

pub(crate) fn account(
    conn: &mut DbConnection,
    event_type: &EventType,
    state: &AccountState<'_>,
    now: Timestamp,
) -> Result<(), DbError> {
    amtsweg_events::publish(conn, event_type, Some(state.account_id), state, now)?;
    Ok(())
}

pub(crate) fn consent(
    conn: &mut DbConnection,
    event_type: &EventType,
    state: &ConsentState<'_>,
    now: Timestamp,
) -> Result<(), DbError> {
    amtsweg_events::publish(conn, event_type, Some(state.account_id), state, now)?;
    Ok(())
}

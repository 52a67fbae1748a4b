//! The fate of a message queued with a `reference`: delivered (accepted by the relay) or failed for good. The
//! events carry ids, the reference and the status — never the address or the content.

use amtsweg_db::{DbConnection, DbError};
use amtsweg_events::EventType;
use amtsweg_kernel::Timestamp;
use serde_json::json;

use crate::Status;

const SOURCE: &str = "urn:amtsweg:mail";

/// Accepted by the mail relay; `data.sent_at` is the moment it was handed over.
pub const DELIVERED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.mail.delivered.v1",
};

/// Refused for good (`permanent-failure`) or never sendable (`technical-failure`).
pub const FAILED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.mail.failed.v1",
};

pub(crate) fn outcome(
    conn: &mut DbConnection,
    id: &str,
    reference: &str,
    status: Status,
    now: Timestamp,
) -> Result<(), DbError> {
    let event = if status == Status::Delivered {
        &DELIVERED
    } else {
        &FAILED
    };
    let data = json!({"mail_id": id, "reference": reference, "status": status, "sent_at": (status == Status::Delivered).then(|| now.rfc3339())});
    amtsweg_events::publish(conn, event, Some(id), &data, now).map(|_| ())
}

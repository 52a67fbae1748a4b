//! The mailroom's delivery events. They carry ids, the case reference, the channel and dates — no personal data,
//! no content. The applications module subscribes to them for the case timeline; a decision's case closes on
//! [`NOTIFIED`].

use amtsweg_db::{DbConnection, DbError};
use amtsweg_events::EventType;
use amtsweg_kernel::Timestamp;
use serde_json::json;

const SOURCE: &str = "urn:amtsweg:mailroom";

const fn event(name: &'static str) -> EventType {
    EventType { source: SOURCE, name }
}

/// Provided in the Postfach (or, without consent to electronic delivery, queued for paper).
pub const PROVIDED: EventType = event("de.amtsweg.mailroom.provided.v1");
/// The notification about the provision was handed to the mail relay.
pub const NOTIFICATION_SENT: EventType = event("de.amtsweg.mailroom.notification_sent.v1");
/// The recipient opened the document for the first time.
pub const RETRIEVED: EventType = event("de.amtsweg.mailroom.retrieved.v1");
/// The provision ended unretrieved (or the notification failed); the decision goes out on paper.
pub const FALLBACK: EventType = event("de.amtsweg.mailroom.fallback_to_paper.v1");
/// The letter was handed to the post.
pub const POSTED: EventType = event("de.amtsweg.mailroom.posted.v1");
/// The decision counts as notified (bekannt gegeben) from `data.deemed_notified_on`.
pub const NOTIFIED: EventType = event("de.amtsweg.mailroom.notified.v1");

/// An inbound document (a scanned letter, another authority's document) was routed to a case.
pub const INBOUND_ROUTED: EventType = event("de.amtsweg.mailroom.inbound_routed.v1");

/// Every event about a case, for the case's module.
pub const ALL: [EventType; 7] = [
    PROVIDED,
    NOTIFICATION_SENT,
    RETRIEVED,
    FALLBACK,
    POSTED,
    NOTIFIED,
    INBOUND_ROUTED,
];

pub(crate) fn inbound(
    conn: &mut DbConnection,
    item_id: &str,
    case_ref: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    let data = json!({"inbound_id": item_id, "case_ref": case_ref, "channel": "inbound"});
    amtsweg_events::publish(conn, &INBOUND_ROUTED, Some(item_id), &data, now).map(|_| ())
}

pub(crate) fn delivery(
    conn: &mut DbConnection,
    event: &EventType,
    delivery_id: &str,
    case_ref: Option<&str>,
    channel: &str,
    deemed_notified_on: Option<&str>,
    now: Timestamp,
) -> Result<(), DbError> {
    let data = json!({
        "delivery_id": delivery_id,
        "case_ref": case_ref,
        "channel": channel,
        "deemed_notified_on": deemed_notified_on,
    });
    amtsweg_events::publish(conn, event, Some(delivery_id), &data, now).map(|_| ())
}

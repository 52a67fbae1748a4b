//! The events of payments: one type per state a payment reaches. They carry ids, the owner reference, the unit,
//! the state and amounts — no personal data. The requesting module subscribes to the ones it acts on (the
//! applications module to `paid`).

use amtsweg_db::{DbConnection, DbError};
use amtsweg_events::EventType;
use amtsweg_kernel::Timestamp;
use serde_json::json;

use crate::model::State;
use crate::service::PaymentRow;

const SOURCE: &str = "urn:amtsweg:payment";

pub const REQUESTED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.payment.requested.v1",
};
pub const PENDING: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.payment.pending.v1",
};
/// Settled: the full amount is confirmed.
pub const PAID: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.payment.paid.v1",
};
pub const CANCELLED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.payment.cancelled.v1",
};
pub const FAILED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.payment.failed.v1",
};
pub const EXPIRED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.payment.expired.v1",
};
pub const REVIEW: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.payment.review.v1",
};

fn type_of(state: State) -> &'static EventType {
    match state {
        State::Initial => &REQUESTED,
        State::Pending => &PENDING,
        State::Paid => &PAID,
        State::Cancelled => &CANCELLED,
        State::Failed => &FAILED,
        State::Expired => &EXPIRED,
        State::Review => &REVIEW,
    }
}

fn data(id: &str, owner: &str, unit_id: &str, state: State, amount_cents: i64) -> serde_json::Value {
    json!({"payment_id": id, "owner": owner, "unit_id": unit_id, "state": state, "amount_cents": amount_cents})
}

pub(crate) fn requested(
    conn: &mut DbConnection,
    id: &str,
    owner: &str,
    unit_id: &str,
    amount_cents: i64,
    now: Timestamp,
) -> Result<(), DbError> {
    let data = data(id, owner, unit_id, State::Initial, amount_cents);
    amtsweg_events::publish(conn, &REQUESTED, Some(id), &data, now).map(|_| ())
}

pub(crate) fn changed(
    conn: &mut DbConnection,
    row: &PaymentRow,
    to: State,
    now: Timestamp,
) -> Result<(), DbError> {
    let data = data(&row.id, &row.owner_ref, &row.unit_id, to, row.amount_cents);
    amtsweg_events::publish(conn, type_of(to), Some(&row.id), &data, now).map(|_| ())
}

/// A refund the cash office recorded.
pub const REFUND_RECORDED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.payment.refund_recorded.v1",
};

pub(crate) fn refunded(
    conn: &mut DbConnection,
    row: &PaymentRow,
    amount_cents: i64,
    now: Timestamp,
) -> Result<(), DbError> {
    let data = json!({
        "payment_id": row.id,
        "owner": row.owner_ref,
        "unit_id": row.unit_id,
        "refunded_cents": amount_cents,
    });
    amtsweg_events::publish(conn, &REFUND_RECORDED, Some(&row.id), &data, now).map(|_| ())
}

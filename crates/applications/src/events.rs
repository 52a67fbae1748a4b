//! The events of applications. They carry ids and states, no form content and no names.

use amtsweg_db::{DbConnection, DbError};
use amtsweg_events::EventType;
use amtsweg_kernel::Timestamp;
use serde_json::json;

use crate::service::EffectContext;

const SOURCE: &str = "urn:amtsweg:applications";

pub const SUBMITTED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.application.submitted.v1",
};

pub const TRANSITIONED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.application.transitioned.v1",
};

pub(crate) fn transitioned(
    conn: &mut DbConnection,
    context: &EffectContext<'_>,
    from: &str,
    to: &str,
    action: &str,
) -> Result<(), DbError> {
    let data = json!({"application_id": context.application_id, "from": from, "to": to, "action": action});
    about(conn, &TRANSITIONED, context, &data)
}

/// Every event of this module is about one application of one procedure.
fn about(
    conn: &mut DbConnection,
    event_type: &EventType,
    context: &EffectContext<'_>,
    data: &serde_json::Value,
) -> Result<(), DbError> {
    let procedure = &context.procedure.procedure.id;
    amtsweg_events::publish_about(
        conn,
        event_type,
        context.application_id,
        procedure,
        data,
        context.now,
    )
    .map(|_| ())
}

/// The period of the fiction of approval (§ 42a VwVfG) was extended.
pub const FICTION_EXTENDED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.application.fiction_extended.v1",
};

/// The period of the fiction of approval ended without a decision: the approval is deemed granted.
pub const APPROVAL_DEEMED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.application.approval_deemed.v1",
};

pub(crate) fn fiction(
    conn: &mut DbConnection,
    event_type: &EventType,
    context: &EffectContext<'_>,
) -> Result<(), DbError> {
    about(
        conn,
        event_type,
        context,
        &json!({"application_id": context.application_id}),
    )
}

/// The milestones workflows may publish (`publish: <name>`), by name.
pub const MILESTONES: [EventType; 4] = [
    EventType {
        source: SOURCE,
        name: "de.amtsweg.application.accepted.v1",
    },
    EventType {
        source: SOURCE,
        name: "de.amtsweg.application.decided.v1",
    },
    EventType {
        source: SOURCE,
        name: "de.amtsweg.application.withdrawn.v1",
    },
    EventType {
        source: SOURCE,
        name: "de.amtsweg.application.discontinued.v1",
    },
];

/// The milestone event type `publish: <name>` stands for.
pub fn milestone_type(name: &str) -> Option<&'static EventType> {
    let wanted = format!("de.amtsweg.application.{name}.v1");
    MILESTONES.iter().find(|t| t.name == wanted)
}

pub(crate) fn submitted(
    conn: &mut DbConnection,
    application_id: &str,
    procedure_id: &str,
    unit_id: &str,
    case_number: &str,
    state: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    let data = json!({
        "application_id": application_id,
        "procedure_id": procedure_id,
        "unit_id": unit_id,
        "case_number": case_number,
        "state": state,
    });
    amtsweg_events::publish_about(conn, &SUBMITTED, application_id, procedure_id, &data, now).map(|_| ())
}

pub(crate) fn milestone(
    conn: &mut DbConnection,
    name: &str,
    context: &EffectContext<'_>,
) -> Result<(), DbError> {
    // Unknown names are refused when workflows are loaded (see `check_workflows`).
    let Some(event_type) = milestone_type(name) else {
        return Ok(());
    };
    about(
        conn,
        event_type,
        context,
        &json!({"application_id": context.application_id}),
    )
}

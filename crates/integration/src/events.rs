//! The events of the integration platform: a client's technical receipt of an application.

use amtsweg_events::EventType;

const SOURCE: &str = "urn:amtsweg:integration";

/// A specialised procedure accepted an application (technical receipt).
pub const ACCEPTED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.integration.application_accepted.v1",
};

/// A specialised procedure rejected an application, with RFC 9457 problems.
pub const REJECTED: EventType = EventType {
    source: SOURCE,
    name: "de.amtsweg.integration.application_rejected.v1",
};

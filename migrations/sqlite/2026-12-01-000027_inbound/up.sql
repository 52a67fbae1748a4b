-- Inbound mail: scanned letters from the central scan office and documents from other authorities' systems,
-- routed to a case (by the case number in the reference or the text), to a procedure's unit, or to triage.
CREATE TABLE inbound_items (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL CHECK (channel IN ('scan', 'authority')),
    submitted_by TEXT NOT NULL,
    sender TEXT NOT NULL,
    received_on TEXT NOT NULL,
    reference TEXT,
    page_count INTEGER,
    file_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('routed', 'triage')),
    routed_by TEXT,
    unit_id TEXT,
    case_ref TEXT,
    case_number TEXT,
    created_at TIMESTAMP NOT NULL,
    routed_at TIMESTAMP,
    CHECK ((state = 'triage') = (unit_id IS NULL))
);
CREATE INDEX inbound_items_triage ON inbound_items (state, created_at, id);
CREATE INDEX inbound_items_unit ON inbound_items (unit_id, created_at, id);
CREATE INDEX inbound_items_case ON inbound_items (case_ref);

-- A case step taken because of another module's event records the event, so that it is taken once.
ALTER TABLE application_steps ADD COLUMN event_id TEXT;
CREATE UNIQUE INDEX application_steps_event ON application_steps (event_id) WHERE event_id IS NOT NULL;

-- When the applicant was reminded that a reply window ends soon (once per window).
ALTER TABLE application_timers ADD COLUMN reminded_at TIMESTAMP;

-- Whether a queued mail publishes its fate as an event (a delivery's notification does; a notice about a case is
-- only looked up by its reference).
ALTER TABLE mail_outbox ADD COLUMN publish_outcome BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE mail_outbox SET publish_outcome = TRUE WHERE reference LIKE 'delivery:%';

-- Formal service with a delivery certificate (Postzustellungsurkunde): a letter kind whose day of service staff
-- record from the returned certificate.
ALTER TABLE print_letters ADD COLUMN kind TEXT NOT NULL DEFAULT 'letter';
ALTER TABLE deliveries ADD COLUMN served_on TEXT;

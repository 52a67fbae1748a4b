-- Applications: a draft belongs to the person who made it (and to an organisation when made on its behalf); once
-- submitted it carries its final case number, the workflow version it runs on and its current state.
CREATE TABLE applications (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    on_behalf_of TEXT,
    procedure_id TEXT NOT NULL,
    procedure_version INTEGER NOT NULL,
    procedure_hash TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    data TEXT NOT NULL,
    prefilled TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'submitted')),
    case_number TEXT UNIQUE,
    workflow_id TEXT,
    workflow_hash TEXT,
    state TEXT,
    version BIGINT NOT NULL,
    applicant_name TEXT,
    fee_cents BIGINT,
    submitted_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (
        (status = 'draft' AND case_number IS NULL AND state IS NULL AND submitted_at IS NULL)
        OR (status = 'submitted' AND case_number IS NOT NULL AND workflow_id IS NOT NULL AND workflow_hash IS NOT NULL
            AND state IS NOT NULL AND submitted_at IS NOT NULL AND applicant_name IS NOT NULL)
    )
);
CREATE INDEX applications_account ON applications (account_id, id);
CREATE INDEX applications_organisation ON applications (on_behalf_of, id);

-- Documents attached to an application; the file itself lives in the files module.
CREATE TABLE application_attachments (
    id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id),
    document_type TEXT NOT NULL,
    file_id TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX application_attachments_application ON application_attachments (application_id);

-- The steps of a case, oldest first: the citizen's timeline is drawn from them.
CREATE TABLE application_steps (
    application_id TEXT NOT NULL REFERENCES applications (id),
    seq INTEGER NOT NULL,
    at TIMESTAMP NOT NULL,
    action TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    comment TEXT,
    public BOOLEAN NOT NULL,
    PRIMARY KEY (application_id, seq)
);

-- Running timers of a case (deadlines, reply windows, reminders), with the last day as a Europe/Berlin date.
CREATE TABLE application_timers (
    application_id TEXT NOT NULL REFERENCES applications (id),
    timer_id TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    due_on TEXT NOT NULL,
    alert_on TEXT,
    PRIMARY KEY (application_id, timer_id)
);
CREATE INDEX application_timers_due ON application_timers (due_on);

-- Case numbers: one counter for every unit and year, taken outside any lock; gaps are allowed, reuse is not.
-- SQLite: AUTOINCREMENT never hands out a number twice, even after its row is deleted.
CREATE TABLE case_numbers (n INTEGER PRIMARY KEY AUTOINCREMENT);

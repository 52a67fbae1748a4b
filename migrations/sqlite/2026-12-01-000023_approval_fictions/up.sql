-- The fiction of approval (§ 42a VwVfG) of a case whose procedure has one: the period (Berlin days) from complete
-- documents, its one extension with reasons, and how it ended — deemed approved, or stopped by a decision or a
-- withdrawal. While documents are outstanding the period has not started (started_on is NULL).
CREATE TABLE approval_fictions (
    application_id TEXT PRIMARY KEY REFERENCES applications (id),
    statute TEXT NOT NULL,
    started_on TEXT,
    ends_on TEXT,
    alert_on TEXT,
    extended_at TIMESTAMP,
    extended_by TEXT,
    extension_reasons TEXT,
    occurred_at TIMESTAMP,
    stopped_at TIMESTAMP,
    stop_reason TEXT,
    CHECK (occurred_at IS NULL OR stopped_at IS NULL)
);
CREATE INDEX approval_fictions_running ON approval_fictions (ends_on) WHERE occurred_at IS NULL AND stopped_at IS NULL;

-- Decisions (Bescheide) of cases: the result, the reasons, the rendered document in the files module, and — where
-- the workflow needs four eyes — the second signature. A decision takes effect only when delivered.
CREATE TABLE application_decisions (
    id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id),
    result TEXT NOT NULL CHECK (result IN ('approved', 'rejected', 'partially_approved')),
    reasons TEXT NOT NULL,
    fee_cents BIGINT,
    author TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    file_id TEXT NOT NULL,
    pdf_sha256 TEXT NOT NULL,
    data_sha256 TEXT NOT NULL,
    cosigned_by TEXT,
    cosigned_at TIMESTAMP,
    CHECK (cosigned_by IS NULL OR cosigned_by <> author),
    CHECK ((cosigned_by IS NULL) = (cosigned_at IS NULL))
);
CREATE INDEX application_decisions_application ON application_decisions (application_id, created_at);

-- Information requests of case workers to the applicant: what is asked (a message, form fields, document types),
-- until when, and how it ended. At most one request of a case is open at a time.
CREATE TABLE information_requests (
    id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id),
    requested_by TEXT NOT NULL,
    message TEXT NOT NULL,
    fields TEXT NOT NULL,
    documents TEXT NOT NULL,
    due_on TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'answered', 'expired', 'closed')),
    created_at TIMESTAMP NOT NULL,
    answer TEXT,
    answered_at TIMESTAMP,
    answered_by TEXT,
    closed_at TIMESTAMP,
    CHECK ((status = 'answered') = (answered_at IS NOT NULL AND answered_by IS NOT NULL)),
    CHECK ((status IN ('expired', 'closed')) = (closed_at IS NOT NULL))
);
CREATE INDEX information_requests_application ON information_requests (application_id, created_at);
CREATE UNIQUE INDEX information_requests_one_open ON information_requests (application_id) WHERE status = 'open';

-- Which information request an attachment answered, if any.
ALTER TABLE application_attachments ADD COLUMN request_id TEXT REFERENCES information_requests (id);

-- Case work: whether a case waits in its unit's queue (from the workflow state's `queued`), since when, and which
-- staff member holds it. Claims belong to staff, not to server instances.
ALTER TABLE applications ADD COLUMN queued BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE applications ADD COLUMN queued_since TIMESTAMP;
ALTER TABLE applications ADD COLUMN assignee TEXT;
ALTER TABLE applications ADD COLUMN claimed_at TIMESTAMP;
CREATE INDEX applications_queue ON applications (unit_id, procedure_id, queued, assignee, queued_since);
CREATE INDEX applications_assignee ON applications (assignee);

-- The kind of a running timer (deadline, reply_window, …), so overdue cases can be counted without the workflow.
ALTER TABLE application_timers ADD COLUMN kind TEXT NOT NULL DEFAULT 'deadline';

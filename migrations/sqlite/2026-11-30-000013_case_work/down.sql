ALTER TABLE application_timers DROP COLUMN kind;
DROP INDEX applications_assignee;
DROP INDEX applications_queue;
ALTER TABLE applications DROP COLUMN claimed_at;
ALTER TABLE applications DROP COLUMN assignee;
ALTER TABLE applications DROP COLUMN queued_since;
ALTER TABLE applications DROP COLUMN queued;

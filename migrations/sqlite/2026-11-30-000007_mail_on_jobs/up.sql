-- The mail queue moves onto the job table: each message gets a `mail.send` job; retries and leases live there.
INSERT INTO jobs (id, kind, payload, dedupe_key, status, attempts, run_at, created_at)
SELECT 'mail-' || id, 'mail.send', '{"id":"' || id || '"}', 'mail:' || id, 'queued', 0, next_attempt_at, created_at
FROM mail_outbox WHERE status = 'pending';

DROP INDEX mail_outbox_due;
ALTER TABLE mail_outbox DROP COLUMN attempts;
ALTER TABLE mail_outbox DROP COLUMN next_attempt_at;
ALTER TABLE mail_outbox DROP COLUMN locked_until;
CREATE INDEX mail_outbox_status ON mail_outbox (status);

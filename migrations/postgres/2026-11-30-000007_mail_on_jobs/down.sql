DROP INDEX mail_outbox_status;
ALTER TABLE mail_outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mail_outbox ADD COLUMN next_attempt_at TIMESTAMP;
UPDATE mail_outbox SET next_attempt_at = created_at;
ALTER TABLE mail_outbox ALTER COLUMN next_attempt_at SET NOT NULL;
ALTER TABLE mail_outbox ADD COLUMN locked_until TIMESTAMP;
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);
DELETE FROM jobs WHERE kind = 'mail.send';

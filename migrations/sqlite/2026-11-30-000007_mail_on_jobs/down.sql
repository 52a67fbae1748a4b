-- Rebuilt with the original definition (SQLite keeps the CREATE text; ADD COLUMN would change it).
CREATE TABLE mail_outbox_previous AS SELECT * FROM mail_outbox;
DROP TABLE mail_outbox;
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    account_id TEXT,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'rejected')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
INSERT INTO mail_outbox (id, account_id, to_address, subject, body_text, kind, status, next_attempt_at, last_error, created_at, sent_at)
SELECT id, account_id, to_address, subject, body_text, kind, status, created_at, last_error, created_at, sent_at
FROM mail_outbox_previous;
DROP TABLE mail_outbox_previous;
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);
CREATE INDEX mail_outbox_account ON mail_outbox (account_id);
DELETE FROM jobs WHERE kind = 'mail.send';

ALTER TABLE application_decisions DROP COLUMN pages;
DROP TABLE print_letters;
DROP TABLE print_batches;
DROP TABLE delivery_documents;
DROP TABLE deliveries;
DROP TABLE mailbox_attachments;
DROP TABLE mailbox_messages;
ALTER TABLE mail_outbox RENAME TO mail_outbox_next;
DROP INDEX mail_outbox_status;
DROP INDEX mail_outbox_account;
DROP INDEX mail_outbox_reference;
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    account_id TEXT,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'rejected')),
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
INSERT INTO mail_outbox
SELECT id, account_id, to_address, subject, body_text, kind,
       CASE status WHEN 'delivered' THEN 'sent' WHEN 'permanent-failure' THEN 'rejected'
                   WHEN 'technical-failure' THEN 'rejected' ELSE 'pending' END,
       last_error, created_at, sent_at
FROM mail_outbox_next;
DROP TABLE mail_outbox_next;
CREATE INDEX mail_outbox_status ON mail_outbox (status);
CREATE INDEX mail_outbox_account ON mail_outbox (account_id);
DROP TABLE delivery_consents;
ALTER TABLE signing_keys DROP COLUMN purpose;

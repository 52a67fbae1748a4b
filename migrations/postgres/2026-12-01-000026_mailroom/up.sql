-- Virtuelle Poststelle.

-- The document-signing (seal) keys live beside the token keys, told apart by purpose, so that one key-encryption
-- key and one rewrap cover both; unlike token keys, retired seal keys stay published for good.
ALTER TABLE signing_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'token';

-- Consent to receive administrative acts electronically (§ 41 (2a) VwVfG), per grant: when, how, revoked when.
CREATE TABLE delivery_consents (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    granted_at TIMESTAMP NOT NULL,
    granted_via TEXT NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX delivery_consents_account ON delivery_consents (account_id, granted_at);

-- Notifications: a reference back to what a mail announces (e.g. `delivery:{id}`), for its delivery status.
-- The statuses become GOV.UK Notify's.
ALTER TABLE mail_outbox DROP CONSTRAINT mail_outbox_status_check;
ALTER TABLE mail_outbox ADD COLUMN reference TEXT;
UPDATE mail_outbox SET status = 'delivered' WHERE status = 'sent';
UPDATE mail_outbox SET status = 'permanent-failure' WHERE status = 'rejected';
UPDATE mail_outbox SET status = 'created' WHERE status = 'pending';
ALTER TABLE mail_outbox ADD CONSTRAINT mail_outbox_status_check
    CHECK (status IN ('created', 'delivered', 'temporary-failure', 'permanent-failure', 'technical-failure'));
CREATE INDEX mail_outbox_reference ON mail_outbox (reference);

-- The Postfach: one per account or organisation (`mailbox` = `account:{id}` / `organisation:{id}`); messages in
-- both directions between it and a unit, in threads.
CREATE TABLE mailbox_messages (
    id TEXT PRIMARY KEY,
    mailbox TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('to_citizen', 'to_unit')),
    kind TEXT NOT NULL CHECK (kind IN ('message', 'decision')),
    thread_id TEXT NOT NULL,
    in_reply_to TEXT,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    case_ref TEXT,
    case_number TEXT,
    required_level TEXT NOT NULL,
    author TEXT,
    created_at TIMESTAMP NOT NULL,
    read_at TIMESTAMP,
    archived_at TIMESTAMP
);
CREATE INDEX mailbox_messages_mailbox ON mailbox_messages (mailbox, created_at, id);
CREATE INDEX mailbox_messages_unit ON mailbox_messages (unit_id, direction, created_at, id);
CREATE INDEX mailbox_messages_thread ON mailbox_messages (thread_id, created_at);

CREATE TABLE mailbox_attachments (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL REFERENCES mailbox_messages (id),
    file_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    seal TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX mailbox_attachments_message ON mailbox_attachments (message_id);

-- The delivery of one document (a decision) with its evidence. Each time is written once and never changed.
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    owner_ref TEXT NOT NULL UNIQUE,
    case_ref TEXT,
    case_number TEXT,
    recipient TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    starts TEXT NOT NULL,
    days INTEGER NOT NULL,
    expires_after_days INTEGER,
    channel TEXT NOT NULL CHECK (channel IN ('postfach', 'paper')),
    state TEXT NOT NULL,
    message_id TEXT,
    attachment_id TEXT,
    required_level TEXT NOT NULL,
    -- The consent to electronic delivery the provision relied on.
    consent_id TEXT,
    provided_at TIMESTAMP,
    notification_mail_id TEXT,
    notification_address TEXT,
    notified_at TIMESTAMP,
    first_retrieved_at TIMESTAMP,
    deemed_notified_on TEXT,
    deemed_recorded_at TIMESTAMP,
    expired_at TIMESTAMP,
    fallback_reason TEXT,
    letter_id TEXT,
    posted_on TEXT,
    created_at TIMESTAMP NOT NULL
);
-- The document delivered.
CREATE TABLE delivery_documents (
    delivery_id TEXT PRIMARY KEY REFERENCES deliveries (id),
    file_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    pages INTEGER
);
CREATE INDEX deliveries_state ON deliveries (state, created_at);
CREATE INDEX deliveries_case ON deliveries (case_ref);
CREATE INDEX deliveries_mail ON deliveries (notification_mail_id);

-- Paper: letters for the central print line, collected into batches.
CREATE TABLE print_batches (
    id TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    letters INTEGER NOT NULL,
    posted_on TEXT,
    posted_by TEXT,
    posted_at TIMESTAMP
);

CREATE TABLE print_letters (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    unit_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    batch_id TEXT REFERENCES print_batches (id),
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX print_letters_open ON print_letters (batch_id, created_at);

-- The page count of a decision document, for the print line's manifest.
ALTER TABLE application_decisions ADD COLUMN pages INTEGER;

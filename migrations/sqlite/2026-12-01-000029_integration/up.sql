-- Integrationsplattform: what specialised procedures (API clients) pull, acknowledge and subscribe to.

-- Events about a procedure's applications name it, so that a client's feed shows only its procedures' events.
ALTER TABLE events ADD COLUMN procedure_id TEXT;
CREATE INDEX events_procedure_position ON events (procedure_id, position);

-- Submitted applications of procedures processed by specialised procedures, in feed order.
CREATE TABLE integration_inbox (
    application_id TEXT PRIMARY KEY,
    procedure_id TEXT NOT NULL,
    case_number TEXT NOT NULL,
    submitted_at TIMESTAMP NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX integration_inbox_procedure ON integration_inbox (procedure_id, position);

-- A client's technical receipt (FIT-Connect accept/reject), once per application and client.
CREATE TABLE integration_acknowledgements (
    application_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'rejected')),
    problems TEXT,
    acknowledged_at TIMESTAMP NOT NULL,
    PRIMARY KEY (client_id, application_id)
);

-- Webhook subscriptions of clients; the secret is wrapped by the key-encryption key.
CREATE TABLE webhook_subscriptions (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    url TEXT NOT NULL,
    event_types TEXT NOT NULL,
    procedures TEXT NOT NULL,
    scheme TEXT NOT NULL CHECK (scheme IN ('standard_webhooks', 'fit_connect')),
    secret TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'deleted')),
    disabled_reason TEXT,
    starts_after BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX webhook_subscriptions_client ON webhook_subscriptions (client_id, created_at);
CREATE INDEX webhook_subscriptions_status ON webhook_subscriptions (status);

-- One delivery of one event to one subscription, with the outcome of its last attempt.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'dead', 'cancelled')),
    attempts INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    last_attempt_at TIMESTAMP,
    delivered_at TIMESTAMP,
    replay BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, id);
CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status, id);

-- Where a reader of the whole feed (the webhook fan-out, the NATS publisher) has got to.
CREATE TABLE integration_cursors (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

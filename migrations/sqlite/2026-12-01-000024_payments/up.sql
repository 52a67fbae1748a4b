-- Payments of the ePayment module. A payment knows its owner only as an opaque reference (e.g.
-- `application:{id}`) and the unit it is for. Its state history (payment_steps) is only ever appended to.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    transaction_number TEXT NOT NULL UNIQUE,
    owner_ref TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    kassenzeichen TEXT UNIQUE,
    -- The provider's own id of the payment where it differs (XBezahldienste' transactionId).
    provider_ref TEXT,
    amount_cents BIGINT NOT NULL,
    purpose TEXT NOT NULL,
    description TEXT NOT NULL,
    bookings TEXT NOT NULL,
    due_on TEXT,
    state TEXT NOT NULL,
    paypage_url TEXT,
    attempt_started_at TIMESTAMP,
    next_check_at TIMESTAMP,
    checks INTEGER NOT NULL DEFAULT 0,
    paid_cents BIGINT,
    paid_at TIMESTAMP,
    -- The payment that took over after this online attempt ended (a new attempt for the same debt).
    superseded_by TEXT,
    version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX payments_owner ON payments (owner_ref, created_at);
-- The reconciliation job's work: payments at the provider, by when to ask next.
CREATE INDEX payments_due_check ON payments (next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX payments_state ON payments (state, unit_id, created_at);

CREATE TABLE payment_steps (
    payment_id TEXT NOT NULL REFERENCES payments (id),
    seq INTEGER NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    reason TEXT NOT NULL,
    note TEXT,
    actor TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    PRIMARY KEY (payment_id, seq)
);

-- Refunds are a manual task of the cash office (the platform offers no refund API): recorded and audited, never
-- more than was paid less what was refunded before.
CREATE TABLE payment_refunds (
    id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    reason TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX payment_refunds_payment ON payment_refunds (payment_id);
CREATE INDEX payments_paid ON payments (paid_at) WHERE paid_at IS NOT NULL;

-- Kassenzeichen the cash office assigns itself (payment.kassenzeichen_format): one counter outside any lock.
CREATE TABLE kassenzeichen_numbers (n INTEGER PRIMARY KEY AUTOINCREMENT);

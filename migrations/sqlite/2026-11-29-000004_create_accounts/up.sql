-- Bürgerkonto: accounts of citizens, organisations and staff, their sessions, credentials, consents and events.

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    public_key TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP,
    expires_at TIMESTAMP
);

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    realm TEXT NOT NULL CHECK (realm IN ('citizen', 'staff')),
    kind TEXT NOT NULL CHECK (kind IN ('person', 'organisation')),
    email TEXT,
    email_key TEXT,
    display_name TEXT NOT NULL,
    password_hash TEXT,
    preferred_language TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'deactivated')),
    email_verified_at TIMESTAMP,
    totp_secret TEXT,
    totp_enabled_at TIMESTAMP,
    totp_last_step BIGINT,
    register_number TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP,
    deletion_flagged_at TIMESTAMP,
    deactivated_at TIMESTAMP
);
CREATE UNIQUE INDEX accounts_email ON accounts (realm, email_key);
CREATE INDEX accounts_last_login ON accounts (realm, last_login_at);

CREATE TABLE profiles (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id),
    given_name TEXT,
    family_name TEXT,
    date_of_birth TEXT,
    street TEXT,
    house_number TEXT,
    postal_code TEXT,
    city TEXT,
    country TEXT,
    phone TEXT,
    verified_fields TEXT NOT NULL DEFAULT '',
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE organisation_members (
    organisation_id TEXT NOT NULL REFERENCES accounts (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    role TEXT NOT NULL CHECK (role IN ('representative', 'member')),
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (organisation_id, account_id)
);
CREATE INDEX organisation_members_account ON organisation_members (account_id);

CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    purpose TEXT NOT NULL CHECK (purpose IN ('verify_email', 'password_reset', 'totp_enrollment', 'email_change')),
    new_email TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX email_tokens_account ON email_tokens (account_id);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    acr TEXT NOT NULL,
    amr TEXT NOT NULL,
    auth_time TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    revoke_reason TEXT,
    user_agent TEXT,
    address TEXT
);
CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE recovery_codes (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    code_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    PRIMARY KEY (account_id, code_hash)
);

CREATE TABLE pending_totp (
    account_id TEXT PRIMARY KEY REFERENCES accounts (id),
    secret TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE login_throttle (
    login_key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    day TEXT NOT NULL,
    last_failure_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP NOT NULL
);

CREATE TABLE consents (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    recipient_kind TEXT NOT NULL CHECK (recipient_kind IN ('procedure', 'authority')),
    recipient_id TEXT NOT NULL,
    attributes TEXT NOT NULL,
    granted_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX consents_account ON consents (account_id);

CREATE TABLE security_events (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL,
    address TEXT,
    user_agent TEXT
);
CREATE INDEX security_events_account ON security_events (account_id, at);

CREATE TABLE staff_roles (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    role TEXT NOT NULL CHECK (role IN ('case_worker', 'supervisor', 'catalogue_admin', 'system_admin')),
    unit TEXT NOT NULL,
    PRIMARY KEY (account_id, role, unit)
);

CREATE TABLE api_clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    previous_secret_hash TEXT,
    previous_valid_until TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    disabled_at TIMESTAMP
);

CREATE TABLE eid_links (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    linked_at TIMESTAMP NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX eid_links_account ON eid_links (account_id);

CREATE TABLE oidc_states (
    state TEXT PRIMARY KEY,
    code_verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    account_id TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);

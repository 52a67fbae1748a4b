-- Invitations into an organisation: a representative invites an address; whoever holds a verified account with
-- that address sees the invitation and accepts or declines it. One row per organisation and address.

CREATE TABLE organisation_invitations (
    id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES accounts (id),
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('representative', 'member')),
    invited_by TEXT NOT NULL REFERENCES accounts (id),
    status TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'declined', 'withdrawn')),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    answered_at TIMESTAMP,
    answered_by TEXT REFERENCES accounts (id)
);
CREATE UNIQUE INDEX organisation_invitations_address ON organisation_invitations (organisation_id, email_key);
CREATE INDEX organisation_invitations_email ON organisation_invitations (email_key, status);

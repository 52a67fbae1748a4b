-- The eID provider's signed assertion (its ID token) behind a session opened with the eID card, kept while the
-- session lives: a submission in written form (§ 3a (2) VwVfG) copies it into the case file.
CREATE TABLE eid_assertions (
    session_id TEXT PRIMARY KEY REFERENCES sessions (id),
    account_id TEXT NOT NULL REFERENCES accounts (id),
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    acr TEXT,
    id_token TEXT NOT NULL,
    authenticated_at TIMESTAMP NOT NULL
);
CREATE INDEX eid_assertions_account ON eid_assertions (account_id);

-- The electronic substitute of the written form of a submission: the eID assertion it was made under.
CREATE TABLE application_written_form (
    application_id TEXT PRIMARY KEY REFERENCES applications (id),
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    acr TEXT,
    level TEXT NOT NULL,
    id_token TEXT NOT NULL,
    authenticated_at TIMESTAMP NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);

-- Files: blobs are stored once per content (SHA-256) and count their owners; files are what modules and people
-- hold, with the name and type they were given.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    media_type TEXT NOT NULL,
    owners INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE files (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL REFERENCES blobs (sha256),
    owner_module TEXT NOT NULL,
    account_id TEXT,
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP
);
CREATE INDEX files_account ON files (account_id);
CREATE INDEX files_expires ON files (expires_at);
CREATE INDEX files_blob ON files (sha256);

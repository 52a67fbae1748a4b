-- Every workflow version ever loaded, by the SHA-256 of its canonical JSON: a case stays on the definition it
-- was submitted under (applications.workflow_hash) when a later version is published.
CREATE TABLE workflow_versions (
    workflow_id TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version > 0),
    sha256 TEXT NOT NULL UNIQUE,
    definition TEXT NOT NULL,
    loaded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

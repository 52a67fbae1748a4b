-- Every procedure version the catalogue ever loaded, so an application can pin the exact form, fees and rules it
-- was made under.
CREATE TABLE procedure_versions (
    procedure_id TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version > 0),
    content_hash TEXT NOT NULL,
    definition TEXT NOT NULL,
    loaded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (procedure_id, version)
);

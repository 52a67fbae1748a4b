-- Internal notes of case workers on a case; never shown to the citizen.
CREATE TABLE application_notes (
    id TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications (id),
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX application_notes_application ON application_notes (application_id, created_at);

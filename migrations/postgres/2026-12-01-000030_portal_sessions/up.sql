-- The portal's browser sessions: a cookie secret (stored as its SHA-256) bound to one account session. Ending the
-- account session ends the browser session; the CSRF secret belongs to the browser session.
CREATE TABLE portal_sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);
CREATE INDEX portal_sessions_session ON portal_sessions (session_id);

-- Feedback on the portal's accessibility (BITV 2.0 § 7), answered by the office that runs the portal.
CREATE TABLE portal_feedback (
    id TEXT PRIMARY KEY NOT NULL,
    page TEXT,
    message TEXT NOT NULL,
    contact TEXT,
    lang TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- The event outbox (CloudEvents). `position` is given after commit by one sequencer at a time, so readers paging
-- by position never skip an event whose transaction committed late.
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    position BIGINT UNIQUE,
    source TEXT NOT NULL,
    event_type TEXT NOT NULL,
    subject TEXT,
    time TIMESTAMP NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX events_unsequenced ON events (time, id) WHERE position IS NULL;
CREATE INDEX events_subject ON events (subject);

CREATE TABLE event_sequence (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_position BIGINT NOT NULL
);
INSERT INTO event_sequence (id, last_position) VALUES (1, 0);

-- Case search: the words of the applicant's name (lower case) as recorded at submission, byte-ordered (SQLite's
-- BINARY collation) so that a prefix is a range of the index; and orderings for the search's filters.
CREATE TABLE application_name_tokens (
    token TEXT NOT NULL,
    application_id TEXT NOT NULL REFERENCES applications (id),
    PRIMARY KEY (token, application_id)
);
WITH RECURSIVE split (id, rest, word) AS (
    SELECT id, lower(trim(applicant_name)) || ' ', '' FROM applications WHERE applicant_name IS NOT NULL
    UNION ALL
    SELECT id, substr(rest, instr(rest, ' ') + 1), substr(rest, 1, instr(rest, ' ') - 1) FROM split WHERE rest <> ''
)
INSERT OR IGNORE INTO application_name_tokens (token, application_id) SELECT word, id FROM split WHERE word <> '';

-- Whether a case's name has a word with a prefix, along an ordered scan of cases.
CREATE INDEX application_name_tokens_application ON application_name_tokens (application_id, token);

-- The search's orderings, newest submission first under its most common filters (not partial: the status is a
-- bound parameter, which a generic plan cannot match against an index predicate).
CREATE INDEX applications_search_unit ON applications (unit_id, status, submitted_at, id);
CREATE INDEX applications_search_procedure ON applications (unit_id, procedure_id, status, submitted_at, id);
CREATE INDEX applications_search_state ON applications (unit_id, state, status, submitted_at, id);

-- Claim-next: the unclaimed cases of a queue in the order they are handed out, the tie broken by id. Partial on
-- `assignee IS NULL`: PostgreSQL does not take an IS NULL condition as fixing a column, so with the column in the
-- index it would not see the order and sorted the whole queue (140 ms at 100,000 cases; 0.1 ms with this one).
DROP INDEX applications_queue;
CREATE INDEX applications_queue ON applications (unit_id, procedure_id, queued, queued_since, id) WHERE assignee IS NULL;
CREATE INDEX applications_claimed ON applications (unit_id, procedure_id, queued) WHERE assignee IS NOT NULL;

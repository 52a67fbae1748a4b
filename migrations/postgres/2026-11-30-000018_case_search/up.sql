-- Case search: the words of the applicant's name (lower case) as recorded at submission, byte-ordered so that a
-- prefix is a range of the index; and orderings for the search's filters, newest submission first.
CREATE TABLE application_name_tokens (
    token TEXT COLLATE "C" NOT NULL,
    application_id TEXT NOT NULL REFERENCES applications (id),
    PRIMARY KEY (token, application_id)
);
INSERT INTO application_name_tokens (token, application_id)
SELECT DISTINCT word, id
FROM applications, regexp_split_to_table(lower(applicant_name), '\s+') AS word
WHERE applicant_name IS NOT NULL AND word <> '';

-- Whether a case's name has a word with a prefix, along an ordered scan of cases.
CREATE INDEX application_name_tokens_application ON application_name_tokens (application_id, token);

-- The search's orderings, newest submission first under its most common filters (not partial: the status is a
-- bound parameter, which a generic plan cannot match against an index predicate).
CREATE INDEX applications_search_unit ON applications (unit_id, status, submitted_at, id);
CREATE INDEX applications_search_procedure ON applications (unit_id, procedure_id, status, submitted_at, id);
CREATE INDEX applications_search_state ON applications (unit_id, state, status, submitted_at, id);

-- Claim-next: the unclaimed cases of a queue in the order they are handed out, the tie broken by id.
DROP INDEX applications_queue;
CREATE INDEX applications_queue ON applications (unit_id, procedure_id, queued, assignee, queued_since, id);

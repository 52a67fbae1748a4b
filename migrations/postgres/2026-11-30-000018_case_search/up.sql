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

CREATE INDEX applications_search_unit ON applications (unit_id, submitted_at, id) WHERE status = 'submitted';
CREATE INDEX applications_search_procedure ON applications (unit_id, procedure_id, submitted_at, id) WHERE status = 'submitted';
CREATE INDEX applications_search_state ON applications (unit_id, state, submitted_at, id) WHERE status = 'submitted';

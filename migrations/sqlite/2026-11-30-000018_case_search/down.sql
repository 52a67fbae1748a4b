DROP INDEX applications_claimed;
DROP INDEX applications_queue;
CREATE INDEX applications_queue ON applications (unit_id, procedure_id, queued, assignee, queued_since);
DROP INDEX applications_search_state;
DROP INDEX applications_search_procedure;
DROP INDEX applications_search_unit;
DROP INDEX application_name_tokens_application;
DROP TABLE application_name_tokens;

DROP INDEX applications_search_state;
DROP INDEX applications_search_procedure;
DROP INDEX applications_search_unit;
DROP TABLE application_name_tokens;

DROP TABLE application_written_form;
DROP TABLE eid_assertions;

DROP TABLE case_numbers;
DROP TABLE application_timers;
DROP TABLE application_steps;
DROP TABLE application_attachments;
DROP TABLE applications;

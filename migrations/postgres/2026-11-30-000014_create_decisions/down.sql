DROP TABLE application_decisions;

DROP TABLE application_receipts;

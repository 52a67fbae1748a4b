ALTER TABLE application_attachments DROP COLUMN request_id;
DROP TABLE information_requests;

ALTER TABLE deliveries DROP COLUMN served_on;
ALTER TABLE print_letters DROP COLUMN kind;
ALTER TABLE mail_outbox DROP COLUMN publish_outcome;
ALTER TABLE application_timers DROP COLUMN reminded_at;
DROP INDEX application_steps_event;
ALTER TABLE application_steps DROP COLUMN event_id;
DROP TABLE inbound_items;

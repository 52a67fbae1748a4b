DROP INDEX application_steps_event;
ALTER TABLE application_steps DROP COLUMN event_id;
DROP TABLE inbound_items;

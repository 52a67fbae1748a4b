DROP TABLE integration_cursors;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_subscriptions;
DROP TABLE integration_acknowledgements;
DROP TABLE integration_inbox;
DROP INDEX events_procedure_position;
ALTER TABLE events DROP COLUMN procedure_id;

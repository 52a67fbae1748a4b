ALTER TABLE applications DROP COLUMN waiting_since;
ALTER TABLE applications DROP COLUMN service_norm_due;

-- The service norm of a case (the procedure's processing.target_days in calendar days from submission, Europe/Berlin):
-- its last day, moved back by the days the case waited for the citizen, and since when it waits.
ALTER TABLE applications ADD COLUMN service_norm_due TEXT;
ALTER TABLE applications ADD COLUMN waiting_since TIMESTAMP;

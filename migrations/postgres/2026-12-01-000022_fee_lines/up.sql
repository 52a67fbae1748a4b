-- The fee of a case line by line with its ePayBL booking data (JSON): assessed from the catalogue at submission,
-- replaced by the procedure's decision_fee line when a decision sets the fee.
ALTER TABLE applications ADD COLUMN fee_lines TEXT;

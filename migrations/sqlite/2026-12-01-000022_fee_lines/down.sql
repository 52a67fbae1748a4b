ALTER TABLE applications DROP COLUMN fee_lines;

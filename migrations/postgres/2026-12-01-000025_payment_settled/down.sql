ALTER TABLE applications DROP COLUMN payment_settled_at;

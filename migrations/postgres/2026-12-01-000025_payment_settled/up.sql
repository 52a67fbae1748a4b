-- When the payment a case waits for before processing was settled (the applications module's own record of the
-- payment module's event; it never reads the payment tables).
ALTER TABLE applications ADD COLUMN payment_settled_at TIMESTAMP;

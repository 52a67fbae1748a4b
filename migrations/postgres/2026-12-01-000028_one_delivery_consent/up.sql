-- At most one consent to electronic delivery in force per account (two simultaneous grants record one).
CREATE UNIQUE INDEX delivery_consents_in_force ON delivery_consents (account_id) WHERE revoked_at IS NULL;

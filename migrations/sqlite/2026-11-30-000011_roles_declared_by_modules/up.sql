-- Staff roles are declared by the modules (and checked by the account service on granting), no longer listed in
-- the schema. SQLite cannot drop a CHECK: the table is rebuilt.
CREATE TABLE staff_roles_new (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    role TEXT NOT NULL,
    unit TEXT NOT NULL,
    PRIMARY KEY (account_id, role, unit)
);
INSERT INTO staff_roles_new (account_id, role, unit) SELECT account_id, role, unit FROM staff_roles;
DROP TABLE staff_roles;
ALTER TABLE staff_roles_new RENAME TO staff_roles;

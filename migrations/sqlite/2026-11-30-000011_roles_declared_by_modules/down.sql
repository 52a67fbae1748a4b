CREATE TABLE staff_roles_previous AS SELECT * FROM staff_roles;
DROP TABLE staff_roles;
CREATE TABLE staff_roles (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    role TEXT NOT NULL CHECK (role IN ('case_worker', 'supervisor', 'catalogue_admin', 'system_admin')),
    unit TEXT NOT NULL,
    PRIMARY KEY (account_id, role, unit)
);
INSERT INTO staff_roles (account_id, role, unit)
SELECT account_id, role, unit FROM staff_roles_previous
WHERE role IN ('case_worker', 'supervisor', 'catalogue_admin', 'system_admin');
DROP TABLE staff_roles_previous;

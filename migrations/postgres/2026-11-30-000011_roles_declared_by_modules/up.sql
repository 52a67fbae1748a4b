-- Staff roles are declared by the modules (and checked by the account service on granting), no longer listed in
-- the schema.
ALTER TABLE staff_roles DROP CONSTRAINT staff_roles_role_check;

DELETE FROM staff_roles WHERE role NOT IN ('case_worker', 'supervisor', 'catalogue_admin', 'system_admin');
ALTER TABLE staff_roles ADD CONSTRAINT staff_roles_role_check
    CHECK (role IN ('case_worker', 'supervisor', 'catalogue_admin', 'system_admin'));

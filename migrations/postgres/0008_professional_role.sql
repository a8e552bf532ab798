-- Professionals (doctors, physiotherapists, social workers, interpreters)
-- join nurses' video visits when invited.

ALTER TABLE user_roles DROP CONSTRAINT IF EXISTS user_roles_role_check;
ALTER TABLE user_roles ADD CONSTRAINT user_roles_role_check
    CHECK (role IN ('admin', 'nurse', 'patrol', 'supervisor', 'professional'));

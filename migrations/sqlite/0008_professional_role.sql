-- Professionals (doctors, physiotherapists, social workers, interpreters)
-- join nurses' video visits when invited.

CREATE TABLE user_roles_new (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'nurse', 'patrol', 'supervisor', 'professional')),
    PRIMARY KEY (user_id, role)
);
INSERT INTO user_roles_new (user_id, role) SELECT user_id, role FROM user_roles;
DROP TABLE user_roles;
ALTER TABLE user_roles_new RENAME TO user_roles;

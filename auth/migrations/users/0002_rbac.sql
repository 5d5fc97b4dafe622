-- Roles (RBAC) live beside the users, so deleting a database user and its role assignments
-- is one transaction. Built-in roles are not stored; their assignments are.

-- A custom role and its permissions, as a JSON array in the /v1/authz wire form.
CREATE TABLE rbac_roles (
    name        TEXT PRIMARY KEY NOT NULL,
    permissions TEXT NOT NULL
) STRICT;

-- Who holds which role: namespace `db` (static and database users), `oidc` or `group`.
CREATE TABLE rbac_assignments (
    namespace TEXT NOT NULL CHECK (namespace IN ('db', 'oidc', 'group')),
    subject   TEXT NOT NULL,
    role      TEXT NOT NULL,
    PRIMARY KEY (namespace, subject, role)
) STRICT;

CREATE INDEX rbac_assignments_by_role ON rbac_assignments (role);

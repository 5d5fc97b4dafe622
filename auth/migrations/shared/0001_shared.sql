-- The user store shared by replicas (PostgreSQL; docs/replicas.md). Only key digests are stored.

-- One row: where the change log stands. Every change bumps change_seq under this row's lock,
-- so sequence order is commit order; change_tag is random per change and store_id random per
-- store, so a rewritten history or another database shows.
CREATE TABLE portcullis_sync (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    store_id   text   NOT NULL,
    change_seq bigint NOT NULL,
    change_tag text   NOT NULL
);
INSERT INTO portcullis_sync (store_id, change_seq, change_tag)
VALUES (gen_random_uuid()::text, 0, gen_random_uuid()::text);

-- Database users and their current keys.
CREATE TABLE portcullis_users (
    id            text PRIMARY KEY,
    key_id        text NOT NULL UNIQUE,
    key_digest    bytea NOT NULL UNIQUE CHECK (length(key_digest) = 32),
    active        boolean NOT NULL,
    revoked       boolean NOT NULL,
    created_at_ms bigint NOT NULL,
    last_used_ms  bigint,
    -- change_seq of the user's last change (last_used_ms never moves it)
    seq           bigint NOT NULL
);

-- The change log: one row per change, with the user's state after it (no key_id: deleted).
-- kind 'roles': a role or assignment changed (replicas reload the roles).
CREATE TABLE portcullis_changes (
    seq           bigint PRIMARY KEY,
    tag           text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('user', 'roles')),
    op            text NOT NULL,
    user_id       text,
    key_id        text,
    key_digest    bytea,
    active        boolean,
    revoked       boolean,
    created_at_ms bigint,
    committed_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One-off facts, such as whether the bootstrap admin was created.
CREATE TABLE portcullis_meta (
    name  text PRIMARY KEY,
    value text NOT NULL
);

-- Roles (RBAC), as in the SQLite file's 0002_rbac.sql.
CREATE TABLE portcullis_rbac_roles (
    name        text PRIMARY KEY,
    permissions text NOT NULL
);
CREATE TABLE portcullis_rbac_assignments (
    namespace text NOT NULL CHECK (namespace IN ('db', 'oidc', 'group')),
    subject   text NOT NULL,
    role      text NOT NULL,
    PRIMARY KEY (namespace, subject, role)
);
CREATE INDEX portcullis_rbac_assignments_by_role ON portcullis_rbac_assignments (role);

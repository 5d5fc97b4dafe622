-- Database users and their current keys. Only a SHA-256 digest of each key is stored.
CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    key_id        TEXT NOT NULL UNIQUE,
    key_digest    BLOB NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    revoked       INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    last_used_ms  INTEGER
) STRICT;

-- One-off facts about this store, such as whether the bootstrap admin was created.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

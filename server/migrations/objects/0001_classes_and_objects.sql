-- The embedded document store: one row per class (its definition as JSON, as served by
-- GET /v1/schema/{class}) and one row per object. Deleting a class deletes its objects.
CREATE TABLE classes (
    name        TEXT    NOT NULL PRIMARY KEY,
    definition  TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL
) STRICT;

CREATE TABLE objects (
    class       TEXT    NOT NULL REFERENCES classes (name) ON DELETE CASCADE,
    -- Canonical lower-case hyphenated UUID, so text order is byte order (cursor paging).
    id          TEXT    NOT NULL,
    properties  TEXT    NOT NULL,
    vector      TEXT,
    vectors     TEXT,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (class, id)
) STRICT;

-- Listing without a class pages across classes by id.
CREATE INDEX objects_by_id ON objects (id, class);

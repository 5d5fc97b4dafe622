-- Each replica's lease and how far it has applied the change log, for acknowledged
-- revocation: a writer waits until every replica with a live lease has applied its change.
-- lease_until is on the database's clock and never earlier than the replica's own lease.
CREATE TABLE portcullis_replicas (
    replica_id  text PRIMARY KEY,
    applied_seq bigint NOT NULL,
    lease_until timestamptz NOT NULL
);

-- Duties one replica does at a time (pruning, linking nodes to machines), each held by lease:
-- its holder and until when (RFC 3339, UTC). Each replica's own row (`replica:ID`) says it is live.
CREATE TABLE leases (
    duty TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until TEXT NOT NULL
);
CREATE INDEX leases_holder_idx ON leases (holder);

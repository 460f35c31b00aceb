-- IdP users are keyed by issuer and subject (which never change), not by their user name; their
-- groups are a JSON array.
ALTER TABLE users ADD COLUMN issuer TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN subject TEXT NOT NULL DEFAULT '';
-- Set when the IdP sent no groups claim at all: which claim was expected and which arrived.
ALTER TABLE users ADD COLUMN groups_note TEXT NOT NULL DEFAULT '';
UPDATE users SET groups = CASE WHEN groups = '' THEN '[]' ELSE to_json(string_to_array(groups, ','))::text END;
CREATE UNIQUE INDEX users_issuer_subject_key ON users (issuer, subject) WHERE source = 'oidc' AND subject <> '';


-- When each session was last in use, so expired ones (and their sealed refresh tokens) are pruned.
ALTER TABLE user_sessions ADD COLUMN last_seen_at TEXT NOT NULL DEFAULT '';
UPDATE user_sessions SET last_seen_at = created_at;

-- Durable jobs (imports now; drains, power actions and boots later): any replica reads their
-- progress, and a lease says which replica runs a job, so a job whose replica died is found.
-- state: running (on the lease holder), waiting (for a person, e.g. an import's preview),
-- succeeded or failed. step names the part a running job is in, e.g. check or commit.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'waiting', 'succeeded', 'failed')),
    step TEXT NOT NULL DEFAULT '',
    done BIGINT NOT NULL DEFAULT 0,
    total BIGINT NOT NULL DEFAULT 0,
    input TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    lease_holder TEXT NOT NULL DEFAULT '',
    lease_until TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX jobs_owner_idx ON jobs (owner, created_at);
CREATE INDEX jobs_lease_idx ON jobs (state, lease_until);

-- Imports insert tens of thousands of rows: the trigram index takes them into its pending list
-- and merges them in bulk, instead of one index update per row.
ALTER INDEX machines_search_trgm_idx SET (fastupdate = on);

-- Kubernetes clusters Pangea shows and acts on. Pangea's own credentials for each are sealed
-- with the secret key (ChaCha20-Poly1305) and never shown again.
CREATE TABLE clusters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    api_url TEXT NOT NULL,
    -- PEM; '' trusts the system roots.
    ca_pem TEXT NOT NULL DEFAULT '',
    credential_kind TEXT NOT NULL CHECK (credential_kind IN ('token', 'client_certificate')),
    -- The sealed token, or the sealed JSON of a client certificate and its key.
    credential_sealed TEXT NOT NULL,
    prometheus_url TEXT NOT NULL DEFAULT '',
    alertmanager_url TEXT NOT NULL DEFAULT '',
    grafana_url TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT clusters_name_key UNIQUE (name)
);


-- A person asked a running job (a drain) to stop; its runner checks between steps.
ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;

-- A role binding applies to every cluster ('') or to the one cluster it names ("team-a is
-- operator on edge-1 only"); one binding per subject and cluster. SQLite cannot change a
-- table's constraints, so the table is rebuilt with the same rows and ids.
CREATE TABLE role_bindings_scoped (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('group', 'user')),
    subject TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    cluster TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    CONSTRAINT role_bindings_subject_key UNIQUE (subject_kind, subject, cluster)
);
INSERT INTO role_bindings_scoped (id, subject_kind, subject, role, created_by, created_at)
    SELECT id, subject_kind, subject, role, created_by, created_at FROM role_bindings;
DROP TABLE role_bindings;
ALTER TABLE role_bindings_scoped RENAME TO role_bindings;

-- Whom Pangea impersonates in clusters for an API token; '' is `pangea:token:<name>` in the
-- group `pangea:api-tokens`. Groups are a JSON array of strings.
ALTER TABLE api_tokens ADD COLUMN cluster_user TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN cluster_groups TEXT NOT NULL DEFAULT '[]';

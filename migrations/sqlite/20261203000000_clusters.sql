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

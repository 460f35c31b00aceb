-- The secret files of machines Pangea creates a cluster from (keys, kubeconfigs, the bootstrap
-- kubeconfig), sealed, each fetched once by its machine's Ignition through a link in its config.
CREATE TABLE cluster_secrets (
    token TEXT NOT NULL,
    path TEXT NOT NULL,
    cluster TEXT NOT NULL,
    mac TEXT NOT NULL,
    sealed TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- When and from where it was fetched; empty until then.
    fetched_at TEXT NOT NULL DEFAULT '',
    fetched_from TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (token, path)
);
CREATE INDEX cluster_secrets_by_cluster ON cluster_secrets (cluster);

-- Clusters Pangea creates: what a person asked for (the template, YAML), the machines it took
-- (JSON: role, name, MAC, machine id and each one's secret link), the PKI it made (sealed as a
-- whole), and the job that follows the machines until every node is Ready.
CREATE TABLE cluster_creations (
    name TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    nodes TEXT NOT NULL,
    sealed_pki TEXT NOT NULL,
    job TEXT NOT NULL DEFAULT '',
    -- creating | created | failed
    state TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

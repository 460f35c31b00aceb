-- Machines Pangea knows by MAC address. Optional text columns hold '' for "none", so keyset
-- pagination can compare them without NULL cases.
CREATE TABLE machines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mac TEXT NOT NULL,
    hostname TEXT NOT NULL DEFAULT '',
    uuid TEXT NOT NULL DEFAULT '',
    serial TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL CHECK (role IN ('controller', 'worker')),
    cluster TEXT NOT NULL DEFAULT '',
    -- Lowercase MAC, host name, cluster, serial, UUID and labels, for substring search.
    search_text TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CONSTRAINT machines_mac_key UNIQUE (mac)
);
CREATE INDEX machines_hostname_idx ON machines (hostname, id);
CREATE INDEX machines_role_idx ON machines (role, id);
CREATE INDEX machines_cluster_idx ON machines (cluster, id);
CREATE INDEX machines_created_at_idx ON machines (created_at, id);
CREATE INDEX machines_updated_at_idx ON machines (updated_at, id);

CREATE TABLE machine_labels (
    machine_id INTEGER NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (machine_id, key)
);
CREATE INDEX machine_labels_key_value_idx ON machine_labels (key, value);

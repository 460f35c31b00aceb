-- Every request to the boot listener, as a boot event: the per-machine timeline. Written in
-- batches off the request path; bounded per machine and by age (see docs/provisioning.md).
-- Text columns hold '' for "none". mac is the machine the request is attributed to: its own
-- mac label, the inventory machine with its uuid, or (for /boot.ipxe and /assets, which carry
-- no labels) the machine that last asked from the same address.
CREATE TABLE boot_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    mac TEXT NOT NULL DEFAULT '',
    uuid TEXT NOT NULL DEFAULT '',
    endpoint TEXT NOT NULL,
    -- JSON object: the query labels the machine sent.
    labels TEXT NOT NULL DEFAULT '{}',
    group_id TEXT NOT NULL DEFAULT '',
    profile_id TEXT NOT NULL DEFAULT '',
    status INTEGER NOT NULL,
    bytes BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    client TEXT NOT NULL,
    -- SHA-256 of the config served (iPXE, GRUB, Ignition, generic, metadata); the body is kept
    -- once per digest in boot_configs.
    sha256 TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    -- The state this event moves its machine to ('' for none).
    step TEXT NOT NULL DEFAULT ''
);
CREATE INDEX boot_events_mac_idx ON boot_events (mac, id);
CREATE INDEX boot_events_at_idx ON boot_events (at);
CREATE INDEX boot_events_client_idx ON boot_events (client, at);
CREATE INDEX boot_events_sha256_idx ON boot_events (sha256);

-- Configs exactly as served, by digest: a timeline links each config event to its body.
CREATE TABLE boot_configs (
    sha256 TEXT PRIMARY KEY,
    body TEXT NOT NULL
);

-- Each machine's boot state, derived from its events as they are written.
CREATE TABLE boot_states (
    mac TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    since TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE INDEX boot_states_state_idx ON boot_states (state, mac);

-- MACs that asked to boot but are not in the inventory (bounded: see --discovered-limit).
CREATE TABLE discovered_machines (
    mac TEXT PRIMARY KEY,
    uuid TEXT NOT NULL DEFAULT '',
    serial TEXT NOT NULL DEFAULT '',
    hostname TEXT NOT NULL DEFAULT '',
    arch TEXT NOT NULL DEFAULT '',
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    requests BIGINT NOT NULL
);
CREATE INDEX discovered_machines_last_seen_idx ON discovered_machines (last_seen);

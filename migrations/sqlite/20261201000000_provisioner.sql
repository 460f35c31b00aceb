-- The provisioner's data, as Matchbox keeps it in files: profiles (what a machine boots),
-- groups (which machines get which profile, by selectors, with metadata for templates) and
-- templates (Ignition or Butane, and generic text), each under a file-like id.
-- A group may name a profile that does not exist (Matchbox serves such a group 404): the
-- console refuses to make one, but an import keeps it and says so.
CREATE TABLE provisioning_profiles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    kernel TEXT NOT NULL DEFAULT '',
    -- JSON arrays of strings.
    initrd TEXT NOT NULL DEFAULT '[]',
    args TEXT NOT NULL DEFAULT '[]',
    ignition_id TEXT NOT NULL DEFAULT '',
    generic_id TEXT NOT NULL DEFAULT '',
    -- Kept for compatibility with Matchbox's cloud-config profiles; Pangea serves no cloud-config.
    cloud_id TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL
);

CREATE TABLE provisioning_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    profile TEXT NOT NULL,
    -- JSON objects: label -> value, and the metadata templates see.
    selector TEXT NOT NULL DEFAULT '{}',
    metadata TEXT NOT NULL DEFAULT '{}',
    updated_at TEXT NOT NULL
);
CREATE INDEX provisioning_groups_profile_idx ON provisioning_groups (profile);

-- kind: ignition (Ignition JSON or a Butane template) or generic (any text). Matchbox keeps the
-- two in separate folders, so one id may name one of each.
CREATE TABLE provisioning_templates (
    kind TEXT NOT NULL CHECK (kind IN ('ignition', 'generic')),
    id TEXT NOT NULL,
    content TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);

-- Bumped in every transaction that changes the three tables above: each replica polls it and
-- rebuilds its in-memory boot index when it moves.
CREATE TABLE provisioning_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO provisioning_version (id, version) VALUES (1, 0);

-- Machines in the inventory boot without hand-written groups: a machine gets a profile of its own
-- (by MAC) or, failing that, the default profile of its cluster and role. Pangea then serves it
-- as a group selecting its MAC, with the machine's fields as metadata.
CREATE TABLE provisioning_machine_profiles (
    mac TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- cluster '' is for machines in no cluster.
CREATE TABLE provisioning_defaults (
    cluster TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('controller', 'worker')),
    profile TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (cluster, role)
);

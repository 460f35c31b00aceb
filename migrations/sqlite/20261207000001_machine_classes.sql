-- Machine classes: saved searches over labels and hardware that name a kind of machine
-- (`cpus>=32 and memory_gib>=256 and disks.ssd>=2`), to pick machines by.
CREATE TABLE machine_classes (
    name TEXT PRIMARY KEY,
    query TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- A machine's hardware as its BMC told it at the last read: the figures the machine list filters
-- by in columns of their own (NULL where the BMC does not tell), the whole read as JSON, why the
-- last read failed, and the changes seen since a person last acknowledged them (JSON).
CREATE TABLE machine_hardware (
    machine_id INTEGER PRIMARY KEY REFERENCES machines (id) ON DELETE CASCADE,
    manufacturer TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    serial TEXT NOT NULL DEFAULT '',
    bios_version TEXT NOT NULL DEFAULT '',
    bmc_firmware TEXT NOT NULL DEFAULT '',
    cpus INTEGER,
    memory_gib INTEGER,
    disks INTEGER,
    ssds INTEGER,
    nics INTEGER,
    detail TEXT NOT NULL DEFAULT '{}',
    read_at TEXT NOT NULL DEFAULT '',
    problem TEXT NOT NULL DEFAULT '',
    changes TEXT NOT NULL DEFAULT '[]'
);

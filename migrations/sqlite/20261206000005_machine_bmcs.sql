-- A machine's BMC (Redfish): where it is, who Pangea signs in as (the password sealed, bound to
-- the machine and the BMC's origin), how its certificate is trusted, the system found for this
-- machine when it was checked, and its power as last read.
CREATE TABLE machine_bmcs (
    machine_id INTEGER PRIMARY KEY REFERENCES machines (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    ca_pem TEXT NOT NULL DEFAULT '',
    verify_off INTEGER NOT NULL DEFAULT 0,
    system TEXT NOT NULL DEFAULT '',
    power_state TEXT NOT NULL DEFAULT 'unknown',
    power_reason TEXT NOT NULL DEFAULT '',
    power_read_at TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL
);

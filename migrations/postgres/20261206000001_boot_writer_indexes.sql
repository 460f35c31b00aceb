-- Attributing a `/boot.ipxe` to the machine whose `/ipxe` followed it looks for unattributed
-- events (mac = '') from one client in the last two minutes. The index on (client, at) over all
-- events made that a scan of every recent event of the client: quadratic in a storm from one
-- address (a NAT, a relay, or wrk). This one holds the unattributed events only.
DROP INDEX boot_events_client_idx;
CREATE INDEX boot_events_unattributed_idx ON boot_events (client, at) WHERE mac = '';

-- A full discovered list makes room for a new MAC by the entry that asked least, then the one
-- seen longest ago (boots::store::discover): found by this index, not by sorting the list.
CREATE INDEX discovered_machines_give_way_idx ON discovered_machines (requests, last_seen, mac);

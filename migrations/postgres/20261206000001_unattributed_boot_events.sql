-- Attributing a `/boot.ipxe` to the machine whose `/ipxe` followed it looks for unattributed
-- events (mac = '') from one client in the last two minutes. The index on (client, at) over all
-- events made that a scan of every recent event of the client: quadratic in a storm from one
-- address (a NAT, a relay, or wrk). This one holds the unattributed events only.
DROP INDEX boot_events_client_idx;
CREATE INDEX boot_events_unattributed_idx ON boot_events (client, at) WHERE mac = '';

-- Dashboards people imported, in Grafana's JSON model (as Grafana exports them); Pangea draws
-- them against each cluster's Prometheus. The shipped dashboards are built into Pangea.
CREATE TABLE dashboards (
    uid TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL,
    -- 'upload', or 'grafana:CLUSTER' for one taken from a cluster's Grafana.
    origin TEXT NOT NULL,
    imported_by TEXT NOT NULL,
    imported_at TEXT NOT NULL
);

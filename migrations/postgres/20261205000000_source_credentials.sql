-- Pangea's credentials for a cluster's linked Prometheus, Alertmanager and Grafana (bearer,
-- basic or a client certificate), sealed together as one JSON with the secret key; '' for none.
ALTER TABLE clusters ADD COLUMN source_credentials_sealed TEXT NOT NULL DEFAULT '';

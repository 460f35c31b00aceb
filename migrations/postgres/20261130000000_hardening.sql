-- IdP users are keyed by issuer and subject (which never change), not by their user name; their
-- groups are a JSON array.
ALTER TABLE users ADD COLUMN issuer TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN subject TEXT NOT NULL DEFAULT '';
UPDATE users SET groups = CASE WHEN groups = '' THEN '[]' ELSE to_json(string_to_array(groups, ','))::text END;
CREATE UNIQUE INDEX users_issuer_subject_key ON users (issuer, subject) WHERE source = 'oidc' AND subject <> '';


-- When each session was last in use, so expired ones (and their sealed refresh tokens) are pruned.
ALTER TABLE user_sessions ADD COLUMN last_seen_at TEXT NOT NULL DEFAULT '';
UPDATE user_sessions SET last_seen_at = created_at;

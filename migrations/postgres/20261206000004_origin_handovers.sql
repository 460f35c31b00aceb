-- One-time codes with which the console hands a person's sign-in over to another origin (the
-- clusters' Grafanas on their own listener): only the code's SHA-256 is kept, with the console
-- session it came from, the person, its scope (a cluster) and when it expires (unix ms, 60 s on).
CREATE TABLE origin_handovers (
    code_hash TEXT PRIMARY KEY,
    session_key TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    scope TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

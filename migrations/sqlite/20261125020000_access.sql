-- People who can sign in: the local break-glass admin and users first seen through the IdP.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('local', 'oidc')),
    -- Argon2id PHC string for local users; empty for IdP users.
    password_hash TEXT NOT NULL DEFAULT '',
    -- The IdP groups seen at the last sign-in, comma-separated.
    groups TEXT NOT NULL DEFAULT '',
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    last_login_at TEXT NOT NULL DEFAULT '',
    CONSTRAINT users_username_key UNIQUE (username)
);

-- Which IdP groups or single users hold which console role.
CREATE TABLE role_bindings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('group', 'user')),
    subject TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    CONSTRAINT role_bindings_subject_key UNIQUE (subject_kind, subject)
);

-- API tokens: only a SHA-256 of the token is kept; the token itself is shown once.
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    token_hash TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL DEFAULT '',
    last_used_at TEXT NOT NULL DEFAULT '',
    revoked_at TEXT NOT NULL DEFAULT '',
    CONSTRAINT api_tokens_hash_key UNIQUE (token_hash)
);

-- The signed-in sessions of each user, so they can be listed and ended everywhere.
CREATE TABLE user_sessions (
    session_id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    -- The IdP's refresh token, sealed with Pangea's secret key (ChaCha20-Poly1305); '' if none.
    refresh_token TEXT NOT NULL DEFAULT '',
    refreshed_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX user_sessions_user_idx ON user_sessions (user_id);

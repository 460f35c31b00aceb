-- Sessions are now listed under the SHA-256 of their id (access::sessions::session_key); rows
-- listed under a raw id belong to sessions that can no longer be found: everyone signs in again.
DELETE FROM user_sessions;

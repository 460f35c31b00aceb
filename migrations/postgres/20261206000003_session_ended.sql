-- A session the IdP's answer ended (a refresh that named no groups) stays listed until its next
-- request, which is told why (the login page's message for this code) and then forgets it.
ALTER TABLE user_sessions ADD COLUMN ended TEXT NOT NULL DEFAULT '';

-- Which IdP token `refresh_token` holds, sealed: a refresh token, or (when the IdP gave none)
-- the access token, with which userinfo is asked at each refresh interval.
ALTER TABLE user_sessions ADD COLUMN idp_token_kind TEXT NOT NULL DEFAULT 'refresh';

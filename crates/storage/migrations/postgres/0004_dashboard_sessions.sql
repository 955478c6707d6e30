-- Dashboard sign-in sessions. The cookie holds a random token; only its SHA-256 is stored, with the digest
-- of the API key that signed in (so revoking the key or suspending the identity ends the session too) and
-- the session's CSRF token.
CREATE TABLE dashboard_sessions (
    token_digest TEXT PRIMARY KEY,
    key_digest   TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX dashboard_sessions_expires_at ON dashboard_sessions (expires_at);

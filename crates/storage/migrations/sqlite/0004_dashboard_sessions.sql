-- Dashboard sign-in sessions. The cookie holds a random token; only its SHA-256 is stored, with who signed in
-- (`key:<digest of the API key>` or `identity:<id>` for single sign-on and LDAP users, so revoking the key or
-- suspending the identity ends the session at once) and the session's CSRF token.
CREATE TABLE dashboard_sessions (
    token_digest TEXT PRIMARY KEY,
    principal    TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX dashboard_sessions_expires_at ON dashboard_sessions (expires_at);

-- OpenID Connect sign-ins under way: the state's SHA-256, the PKCE verifier and nonce (one use, 10 minutes).
CREATE TABLE dashboard_logins (
    state_digest TEXT PRIMARY KEY,
    verifier     TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    redirect_url TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);

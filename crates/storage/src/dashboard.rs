//! What the web dashboard needs beyond the API's queries: sign-in sessions and the filtered timeline.

use ledger_core::Entry;

use crate::{Backend, EntryRow, StorageError, Store, with_pool, with_writer};

/// A dashboard session: the cookie's token is known only by its digest.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    /// The SHA-256 of the cookie's token; the token itself is never stored.
    pub token_digest: String,
    /// `key:<API key digest>` or `identity:<identity id>`.
    pub principal: String,
    /// The token the session's forms must send back (CSRF protection).
    pub csrf_token: String,
    /// When the session started (RFC 3339 UTC, microseconds).
    pub created_at: String,
    /// When the session ends; it is not found from then on.
    pub expires_at: String,
}

/// An OpenID Connect sign-in under way, found by its state's digest.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LoginRow {
    /// The SHA-256 of the `state` parameter sent to the provider.
    pub state_digest: String,
    /// The PKCE code verifier, sent with the code exchange.
    pub verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The callback URL given to the provider (the code exchange repeats it).
    pub redirect_url: String,
    /// When the sign-in can no longer be completed (10 minutes after it started).
    pub expires_at: String,
}

/// Filters of the timeline; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct TimelineFilter {
    /// The entry's actor, or the requester of the entry's action.
    pub identity: Option<String>,
    /// The namespace of the entry's action.
    pub namespace: Option<String>,
    /// The entry kind, e.g. `approval.granted`.
    pub kind: Option<String>,
    /// The current status of the entry's action.
    pub status: Option<String>,
    /// The risk level of the entry's action.
    pub risk: Option<String>,
    /// Only entries with a smaller seq (the next page, going back in time).
    pub before_seq: Option<i64>,
    /// Only entries with a greater seq (what is new since the page was shown).
    pub after_seq: Option<i64>,
    /// Most entries returned (1 to 1,000).
    pub limit: u32,
}

/// A ledger entry with what the timeline shows of its action.
#[derive(Debug, Clone)]
pub struct TimelineEntry {
    /// The entry as stored.
    pub entry: Entry,
    /// The action's namespace; `None` for an entry without an action, or an action without a namespace.
    pub namespace: Option<String>,
    /// The action's current status (not the status when the entry was written); `None` without an action.
    pub status: Option<String>,
    /// The action's risk level; `None` without an action or before it was assessed.
    pub risk: Option<String>,
}

#[derive(sqlx::FromRow)]
struct TimelineRow {
    #[sqlx(flatten)]
    entry: EntryRow,
    a_namespace: Option<String>,
    a_status: Option<String>,
    a_risk: Option<String>,
}

impl Store {
    /// Stores a new session.
    pub async fn insert_session(&self, session: &SessionRow) -> Result<(), StorageError> {
        let sql = "INSERT INTO dashboard_sessions (token_digest, principal, csrf_token, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4, $5)";
        with_writer!(self, pool => sqlx::query(sql)
            .bind(&session.token_digest)
            .bind(&session.principal)
            .bind(&session.csrf_token)
            .bind(&session.created_at)
            .bind(&session.expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The session with this token digest, if it has not expired by `now`.
    pub async fn session(&self, token_digest: &str, now: &str) -> Result<Option<SessionRow>, StorageError> {
        let sql = "SELECT token_digest, principal, csrf_token, created_at, expires_at FROM dashboard_sessions \
                   WHERE token_digest = $1 AND expires_at > $2";
        Ok(with_pool!(self, pool => sqlx::query_as(sql).bind(token_digest).bind(now).fetch_optional(pool).await)?)
    }

    /// Ends one session, and every session that expired before `now`.
    pub async fn delete_session(&self, token_digest: &str, now: &str) -> Result<(), StorageError> {
        let sql = "DELETE FROM dashboard_sessions WHERE token_digest = $1 OR expires_at <= $2";
        with_writer!(self, pool => sqlx::query(sql)
            .bind(token_digest)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Stores a sign-in under way, to be taken once by the provider's callback ([`Store::take_login`]).
    pub async fn insert_login(&self, login: &LoginRow) -> Result<(), StorageError> {
        let sql = "INSERT INTO dashboard_logins (state_digest, verifier, nonce, redirect_url, expires_at) \
                   VALUES ($1, $2, $3, $4, $5)";
        with_writer!(self, pool => sqlx::query(sql)
            .bind(&login.state_digest)
            .bind(&login.verifier)
            .bind(&login.nonce)
            .bind(&login.redirect_url)
            .bind(&login.expires_at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Takes a sign-in under way (once: it is deleted), if it has not expired by `now`; expired ones go too.
    pub async fn take_login(&self, state_digest: &str, now: &str) -> Result<Option<LoginRow>, StorageError> {
        let select = "SELECT state_digest, verifier, nonce, redirect_url, expires_at FROM dashboard_logins \
                      WHERE state_digest = $1 AND expires_at > $2";
        let delete = "DELETE FROM dashboard_logins WHERE state_digest = $1 OR expires_at <= $2";
        let found = with_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let found: Option<LoginRow> = sqlx::query_as(select).bind(state_digest).bind(now).fetch_optional(&mut *tx).await?;
            let deleted = sqlx::query(delete).bind(state_digest).bind(now).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            // Two callbacks with one state: only the one that deleted the row may use it.
            Ok::<_, sqlx::Error>(found.filter(|_| deleted > 0))
        }.await)?;
        Ok(found)
    }

    /// Entries newest first (oldest first with `after_seq`, so that new rows arrive in order), joined with
    /// their action's namespace, status and risk.
    pub async fn timeline(&self, filter: &TimelineFilter) -> Result<Vec<TimelineEntry>, StorageError> {
        let sql = crate::queries::timeline(filter);
        let params = crate::hot_paths::timeline_params(filter);
        let rows: Vec<TimelineRow> =
            with_pool!(self, pool => crate::hot_paths::bind_all!(sqlx::query_as(&sql), &params).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(|row| TimelineEntry {
                entry: Entry::from(row.entry),
                namespace: row.a_namespace,
                status: row.a_status,
                risk: row.a_risk,
            })
            .collect())
    }
}

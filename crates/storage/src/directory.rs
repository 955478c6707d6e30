//! Identities and API keys: lookup tables beside the ledger (actions: `actions.rs`).
//!
//! The ledger is authoritative; these rows make authentication and listing fast. A row counts only once
//! the ledger entry recording it is durable (`recorded_entry`), so a crash between the insert and the
//! append leaves nothing effective behind (`remove_unrecorded` cleans such rows up).

use domain::KeyStatus;
use serde::Serialize;

pub(crate) use crate::actions::ACTION_COLUMNS;
pub use crate::actions::{ActionFilter, ActionRow, ApprovalRow};
use crate::{Backend, StorageError, Store, queries, with_pool, with_writer};

/// A row of `identities`: an agent or a person that may call the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct IdentityRow {
    /// The identity's id (`agt_…` for an agent, `usr_…` for a person).
    pub id: String,
    /// The unique name it is known by.
    pub name: String,
    /// `agent` or `human`.
    pub kind: String,
    /// JSON array of role names.
    pub roles: String,
    /// JSON array of scopes.
    pub scopes: String,
    /// `active`, `suspended` or `revoked`.
    pub status: String,
    /// When the identity was created (RFC 3339 UTC, microseconds).
    pub created_at: String,
    /// The actor that created it.
    pub created_by: String,
    /// When its status, roles or scopes last changed.
    pub updated_at: String,
    /// JSON array of the groups it is in (given by an admin, or reported by its OIDC/LDAP sign-in).
    pub member_of: String,
    /// The ledger entry that records the identity; `None` until that entry is durable, and the row does not
    /// count until then.
    pub recorded_entry: Option<String>,
}

/// A row of `api_keys`: one API key of an identity, known only by its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ApiKeyRow {
    /// The key's id (`key_…`), which is not the secret.
    pub id: String,
    /// The identity the key authenticates.
    pub identity_id: String,
    /// `sha256:<hex>` of the key; unique, and never serialized.
    #[serde(skip)]
    pub digest: String,
    /// Stored as its spelling; anything but `active` reads as revoked.
    #[sqlx(try_from = "String")]
    pub status: KeyStatus,
    /// When the key was issued (RFC 3339 UTC, microseconds).
    pub created_at: String,
    /// When the key was revoked; `None` while it is active.
    pub revoked_at: Option<String>,
    /// The ledger entry that records the key; `None` until that entry is durable, and the key does not
    /// authenticate until then.
    pub recorded_entry: Option<String>,
    /// Who issued the key (NULL when a release before this column wrote it; see `lineage`).
    pub issued_by: Option<String>,
}

/// An identity's roles, scopes and groups as stored (JSON arrays), to compare and replace them at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantsText<'a> {
    /// JSON array of role names.
    pub roles: &'a str,
    /// JSON array of scopes.
    pub scopes: &'a str,
    /// JSON array of group names.
    pub member_of: &'a str,
}

/// What authentication found for a key digest.
#[derive(Debug, Clone)]
pub struct KeyLookup {
    /// The recorded key with that digest.
    pub key: ApiKeyRow,
    /// The recorded identity the key belongs to.
    pub identity: IdentityRow,
}

pub(crate) const IDENTITY_COLUMNS: &str =
    "id, name, kind, roles, scopes, status, created_at, created_by, updated_at, recorded_entry, member_of";
pub(crate) const KEY_COLUMNS: &str =
    "id, identity_id, digest, status, created_at, revoked_at, recorded_entry, issued_by";

impl Store {
    /// Inserts an identity with its first key, both unrecorded, in one transaction.
    /// A duplicate name gives `StorageError::Conflict`.
    pub async fn insert_identity(&self, identity: &IdentityRow, key: &ApiKeyRow) -> Result<(), StorageError> {
        self.insert_identity_with(identity, Some(key)).await
    }

    /// Inserts an identity that signs in through an identity provider (it has no API key), unrecorded.
    pub async fn insert_external_identity(&self, identity: &IdentityRow) -> Result<(), StorageError> {
        self.insert_identity_with(identity, None).await
    }

    async fn insert_identity_with(&self, identity: &IdentityRow, key: Option<&ApiKeyRow>) -> Result<(), StorageError> {
        let insert_identity = format!(
            "INSERT INTO identities ({IDENTITY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10)"
        );
        let insert_key = format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6)");
        let result = with_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query(&insert_identity)
                .bind(&identity.id)
                .bind(&identity.name)
                .bind(&identity.kind)
                .bind(&identity.roles)
                .bind(&identity.scopes)
                .bind(&identity.status)
                .bind(&identity.created_at)
                .bind(&identity.created_by)
                .bind(&identity.updated_at)
                .bind(&identity.member_of)
                .execute(&mut *tx)
                .await?;
            if let Some(key) = key {
                sqlx::query(&insert_key)
                    .bind(&key.id)
                    .bind(&key.identity_id)
                    .bind(&key.digest)
                    .bind(key.status.as_str())
                    .bind(&key.created_at)
                    .bind(&key.issued_by)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }.await);
        result.map_err(|e| conflict_or(e, format!("an identity named {:?} already exists", identity.name)))
    }

    /// Inserts an additional key, unrecorded.
    pub async fn insert_key(&self, key: &ApiKeyRow) -> Result<(), StorageError> {
        let sql = format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6)");
        let result = with_writer!(self, pool => sqlx::query(&sql)
            .bind(&key.id)
            .bind(&key.identity_id)
            .bind(&key.digest)
            .bind(key.status.as_str())
            .bind(&key.created_at)
            .bind(&key.issued_by)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()));
        result
            .map(|_| ())
            .map_err(|e| conflict_or(e, "that key exists already".into()))
    }

    /// Marks an identity and its first key as recorded by the ledger entry `entry_id`.
    pub async fn mark_identity_recorded(&self, identity_id: &str, entry_id: &str) -> Result<(), StorageError> {
        let identities = "UPDATE identities SET recorded_entry = $2 WHERE id = $1";
        let keys = "UPDATE api_keys SET recorded_entry = $2 WHERE identity_id = $1 AND recorded_entry IS NULL";
        with_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query(identities).bind(identity_id).bind(entry_id).execute(&mut *tx).await?;
            sqlx::query(keys).bind(identity_id).bind(entry_id).execute(&mut *tx).await?;
            tx.commit().await
        }.await)?;
        Ok(())
    }

    /// Replaces an identity's roles, scopes and groups (JSON arrays) if they are still `from`; false otherwise
    /// (another sign-in changed them first, or the identity does not exist).
    pub async fn update_identity_grants(
        &self,
        id: &str,
        from: &GrantsText<'_>,
        to: &GrantsText<'_>,
        at: &str,
    ) -> Result<bool, StorageError> {
        let sql = "UPDATE identities SET roles = $2, scopes = $3, member_of = $4, updated_at = $5 \
                   WHERE id = $1 AND roles = $6 AND scopes = $7 AND member_of = $8";
        let changed = with_writer!(self, pool => sqlx::query(sql)
            .bind(id)
            .bind(to.roles)
            .bind(to.scopes)
            .bind(to.member_of)
            .bind(at)
            .bind(from.roles)
            .bind(from.scopes)
            .bind(from.member_of)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Marks a key added later (not an identity's first) as recorded by the ledger entry `entry_id`.
    pub async fn mark_key_recorded(&self, key_id: &str, entry_id: &str) -> Result<(), StorageError> {
        let sql = "UPDATE api_keys SET recorded_entry = $2 WHERE id = $1";
        with_writer!(self, pool => sqlx::query(sql).bind(key_id).bind(entry_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Removes an identity (and its keys) or a key whose ledger entry could not be written.
    pub async fn remove_unrecorded_identity(&self, identity_id: &str) -> Result<(), StorageError> {
        with_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM api_keys WHERE identity_id = $1 AND recorded_entry IS NULL")
                .bind(identity_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM identities WHERE id = $1 AND recorded_entry IS NULL")
                .bind(identity_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }.await)?;
        Ok(())
    }

    /// Removes a key whose ledger entry could not be written; a recorded key stays.
    pub async fn remove_unrecorded_key(&self, key_id: &str) -> Result<(), StorageError> {
        let sql = "DELETE FROM api_keys WHERE id = $1 AND recorded_entry IS NULL";
        with_writer!(self, pool => sqlx::query(sql).bind(key_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Removes rows a crash left unrecorded, created before `before` (RFC 3339; leave other gateways time to
    /// finish what they are doing). Returns how many rows went.
    ///
    /// A crash between the ledger append and the marking leaves a row whose entry exists: such rows are
    /// marked recorded (found by their id in the entry's payload; ids are unique random strings), not removed,
    /// so the table never disagrees with the ledger.
    pub async fn remove_stale_unrecorded(&self, before: &str) -> Result<u64, StorageError> {
        let adopt_keys = "UPDATE api_keys SET recorded_entry = (SELECT e.id FROM ledger_entries e \
             WHERE e.kind IN ('identity.created', 'key.issued', 'key.rotated') \
             AND e.payload LIKE '%\"' || api_keys.id || '\"%' ORDER BY e.seq LIMIT 1) \
             WHERE recorded_entry IS NULL AND created_at < $1";
        let adopt_identities = "UPDATE identities SET recorded_entry = (SELECT e.id FROM ledger_entries e \
             WHERE e.kind = 'identity.created' AND e.payload LIKE '%\"' || identities.id || '\"%' \
             ORDER BY e.seq LIMIT 1) WHERE recorded_entry IS NULL AND created_at < $1";
        let removed = with_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query(adopt_keys).bind(before).execute(&mut *tx).await?;
            sqlx::query(adopt_identities).bind(before).execute(&mut *tx).await?;
            let keys = sqlx::query("DELETE FROM api_keys WHERE recorded_entry IS NULL AND created_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let identities = sqlx::query(
                "DELETE FROM identities WHERE recorded_entry IS NULL AND created_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.identity_id = identities.id)",
            )
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await.map(|_| keys + identities)
        }.await)?;
        Ok(removed)
    }

    /// The recorded identity with this id.
    pub async fn identity(&self, id: &str) -> Result<Option<IdentityRow>, StorageError> {
        let sql = queries::identity_by_id();
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?)
    }

    /// Up to `limit` identities in creation order, after the identity `after` (from the start without one).
    /// An `after` that names no recorded identity gives an empty page.
    pub async fn identities_page(&self, after: Option<&str>, limit: u32) -> Result<Vec<IdentityRow>, StorageError> {
        let sql = queries::identities_page(after.is_some());
        let limit = i64::from(limit.clamp(1, 1000));
        Ok(with_pool!(self, pool => match after {
            Some(after) => sqlx::query_as(&sql).bind(after).bind(limit).fetch_all(pool).await,
            None => sqlx::query_as(&sql).bind(limit).fetch_all(pool).await,
        })?)
    }

    /// The names of the recorded identities among `ids` (at most 1,000 distinct ids are looked up).
    pub async fn identity_names(&self, ids: &[String]) -> Result<Vec<(String, String)>, StorageError> {
        let mut ids: Vec<&String> = ids.iter().collect();
        ids.sort();
        ids.dedup();
        ids.truncate(1000);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = queries::identity_names(ids.len());
        Ok(with_pool!(self, pool => {
            let mut query = sqlx::query_as(&sql);
            for id in &ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await
        })?)
    }

    /// Whether an active identity with the admin role exists.
    pub async fn active_admin_exists(&self) -> Result<bool, StorageError> {
        let sql = queries::ACTIVE_ADMIN_EXISTS;
        Ok(with_pool!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await)?)
    }

    /// Moves an identity from status `from` to `to`; false if it was not in `from` (a concurrent change won).
    pub async fn set_identity_status(&self, id: &str, from: &str, to: &str, at: &str) -> Result<bool, StorageError> {
        let sql = "UPDATE identities SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2 AND recorded_entry IS NOT NULL";
        let changed = with_writer!(self, pool => sqlx::query(sql)
            .bind(id)
            .bind(from)
            .bind(to)
            .bind(at)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Every recorded key of an identity, revoked ones too, in creation order.
    pub async fn keys_of(&self, identity_id: &str) -> Result<Vec<ApiKeyRow>, StorageError> {
        let sql = queries::keys_of();
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(identity_id).fetch_all(pool).await)?)
    }

    /// Whether `key_id` is a recorded key of `identity_id` (a paging cursor's check; a key lookup).
    pub async fn key_exists(&self, identity_id: &str, key_id: &str) -> Result<bool, StorageError> {
        let sql = "SELECT id FROM api_keys WHERE id = $1 AND identity_id = $2 AND recorded_entry IS NOT NULL";
        let found: Option<(String,)> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(key_id).bind(identity_id).fetch_optional(pool).await)?;
        Ok(found.is_some())
    }

    /// Up to `limit` keys (1 to 1,000) of an identity in creation order, after the key `after`.
    pub async fn keys_page(
        &self,
        identity_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ApiKeyRow>, StorageError> {
        let sql = queries::keys_page(after.is_some());
        let limit = i64::from(limit.clamp(1, 1000));
        Ok(with_pool!(self, pool => match after {
            Some(after) => sqlx::query_as(&sql).bind(identity_id).bind(after).bind(limit).fetch_all(pool).await,
            None => sqlx::query_as(&sql).bind(identity_id).bind(limit).fetch_all(pool).await,
        })?)
    }

    /// Revokes a key; false if it was not active.
    pub async fn revoke_key(&self, key_id: &str, at: &str) -> Result<bool, StorageError> {
        let sql = "UPDATE api_keys SET status = 'revoked', revoked_at = $2 WHERE id = $1 AND status = 'active'";
        let changed = with_writer!(self, pool => sqlx::query(sql).bind(key_id).bind(at).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(changed == 1)
    }

    /// Revokes every active key of an identity; returns their ids.
    pub async fn revoke_keys_of(&self, identity_id: &str, at: &str) -> Result<Vec<String>, StorageError> {
        let select = "SELECT id FROM api_keys WHERE identity_id = $1 AND status = 'active' ORDER BY id";
        let update =
            "UPDATE api_keys SET status = 'revoked', revoked_at = $2 WHERE identity_id = $1 AND status = 'active'";
        let ids = with_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let ids: Vec<String> = sqlx::query_scalar(select).bind(identity_id).fetch_all(&mut *tx).await?;
            sqlx::query(update).bind(identity_id).bind(at).execute(&mut *tx).await?;
            tx.commit().await.map(|_| ids)
        }.await)?;
        Ok(ids)
    }

    /// The key with this digest and its identity, whatever their status (the caller judges it).
    pub async fn key_by_digest(&self, digest: &str) -> Result<Option<KeyLookup>, StorageError> {
        let sql = queries::key_by_digest();
        let key: Option<ApiKeyRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(digest).fetch_optional(pool).await)?;
        let Some(key) = key else { return Ok(None) };
        Ok(self
            .identity(&key.identity_id)
            .await?
            .map(|identity| KeyLookup { key, identity }))
    }
}

/// A unique-constraint violation becomes `Conflict` with a message for the caller.
pub(crate) fn conflict_or(error: sqlx::Error, message: String) -> StorageError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StorageError::Conflict(message),
        _ => StorageError::from(error),
    }
}

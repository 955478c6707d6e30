//! Budgets an admin set for one identity (`identity_budgets`: one row per identity with limits of its own; the
//! limits are the gateway's JSON). Every mutation asks for its identity's row, so the store remembers for
//! [`NO_ROWS_TTL`] whether the table has any row, and while it has none answers without a query: while nobody
//! has set a budget a mutation pays nothing for the feature (one `LIMIT 1` read per second at most, while
//! mutations come). A row written through this store is seen at once; one written through another gateway
//! (another store) is seen within [`NO_ROWS_TTL`] when the table was empty, and at once otherwise (the
//! primary-key lookup runs on every mutation while any row exists).

use std::time::{Duration, Instant};

use crate::{Backend, StorageError, Store, with_pool, with_writer};

/// How long "no identity has a budget of its own" is believed before it is asked again.
pub const NO_ROWS_TTL: Duration = Duration::from_secs(1);

/// A row of `identity_budgets`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IdentityBudgetRow {
    /// The identity (`agt_…`, `usr_…`).
    pub identity_id: String,
    /// Its limits, a JSON array (the gateway's `IdentityLimit`s).
    pub limits: String,
    /// The longest of their windows, in seconds (usage is kept at least that long).
    pub longest_window_seconds: i64,
    /// Why, as the admin said.
    pub reason: String,
    /// The admin who set them.
    pub set_by: String,
    /// When (RFC 3339 UTC, microseconds).
    pub set_at: String,
    /// The `budget.set` entry that set them (written before the row).
    pub recorded_entry: String,
}

const COLUMNS: &str = "identity_id, limits, longest_window_seconds, reason, set_by, set_at, recorded_entry";

impl Store {
    /// `Some(any)` while what this store (and its clones) learnt about the table is fresh.
    fn known_rows(&self) -> Option<bool> {
        let known = *self.identity_budget_rows.lock().expect("identity budgets known");
        known.and_then(|(at, any)| (at.elapsed() < NO_ROWS_TTL).then_some(any))
    }

    fn learn_rows(&self, any: bool) {
        *self.identity_budget_rows.lock().expect("identity budgets known") = Some((Instant::now(), any));
    }

    fn forget_rows(&self) {
        *self.identity_budget_rows.lock().expect("identity budgets known") = None;
    }

    /// The identity's own budget, if it has one: no query while the table is known to be empty (see the
    /// module), else one primary-key lookup.
    pub async fn identity_budget(&self, identity_id: &str) -> Result<Option<IdentityBudgetRow>, StorageError> {
        match self.known_rows() {
            Some(false) => return Ok(None),
            Some(true) => {}
            None => {
                let sql = "SELECT identity_id FROM identity_budgets LIMIT 1";
                let any: Option<String> = with_pool!(self, pool => sqlx::query_scalar(sql).fetch_optional(pool).await)?;
                self.learn_rows(any.is_some());
                if any.is_none() {
                    return Ok(None);
                }
            }
        }
        self.identity_budget_row(identity_id).await
    }

    /// The identity's own budget, read from the table whatever is remembered (for the API and the admin's
    /// changes).
    pub async fn identity_budget_row(&self, identity_id: &str) -> Result<Option<IdentityBudgetRow>, StorageError> {
        let sql = format!("SELECT {COLUMNS} FROM identity_budgets WHERE identity_id = $1");
        Ok(with_pool!(self, pool => sqlx::query_as(&sql).bind(identity_id).fetch_optional(pool).await)?)
    }

    /// Sets the identity's own budget (replacing any it had).
    pub async fn put_identity_budget(&self, row: &IdentityBudgetRow) -> Result<(), StorageError> {
        let sql = format!(
            "INSERT INTO identity_budgets ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (identity_id) DO UPDATE SET limits = excluded.limits, \
             longest_window_seconds = excluded.longest_window_seconds, reason = excluded.reason, \
             set_by = excluded.set_by, set_at = excluded.set_at, recorded_entry = excluded.recorded_entry"
        );
        with_writer!(self, pool => sqlx::query(&sql)
            .bind(&row.identity_id)
            .bind(&row.limits)
            .bind(row.longest_window_seconds)
            .bind(&row.reason)
            .bind(&row.set_by)
            .bind(&row.set_at)
            .bind(&row.recorded_entry)
            .execute(pool)
            .await
            .map(|_| ()))?;
        self.learn_rows(true);
        Ok(())
    }

    /// Removes the identity's own budget; whether it had one.
    pub async fn delete_identity_budget(&self, identity_id: &str) -> Result<bool, StorageError> {
        let sql = "DELETE FROM identity_budgets WHERE identity_id = $1";
        let deleted = with_writer!(self, pool => sqlx::query(sql).bind(identity_id).execute(pool).await
            .map(|r| r.rows_affected()))?;
        // Other rows may remain: asked again at the next mutation.
        self.forget_rows();
        Ok(deleted > 0)
    }

    /// The longest window of any identity's own budget, in seconds (`None`: no identity has one).
    pub async fn longest_identity_budget_window(&self) -> Result<Option<i64>, StorageError> {
        let sql = "SELECT MAX(longest_window_seconds) FROM identity_budgets";
        Ok(with_pool!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await)?)
    }
}

//! Who controls an identity: whoever created it, and whoever issued or rotated a key it holds now.
//! Separation of duties (`gateway::duties`) walks these links upward from an approver.

use crate::{Backend, StorageError, Store, with_pool};

/// One link from an identity up to an identity (or another actor, such as `system`) that controls it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Controller {
    /// The controlling actor: an identity id, or a non-identity actor name (`system`, `cli:…`).
    pub actor: String,
    /// Its name, when the actor is an identity.
    pub name: Option<String>,
    /// `None`: the actor created the identity; `Some(key)`: the actor issued (or rotated in) that active key.
    pub key_id: Option<String>,
}

impl Store {
    /// The creator of `identity_id` and the issuers of its active, recorded keys. A key written by a release
    /// without `issued_by` falls back to the actor of the ledger entry that recorded it.
    pub async fn controllers_of(&self, identity_id: &str) -> Result<Vec<Controller>, StorageError> {
        let sql = crate::queries::CONTROLLERS_OF;
        Ok(with_pool!(self, pool => sqlx::query_as(sql).bind(identity_id).fetch_all(pool).await)?)
    }
}

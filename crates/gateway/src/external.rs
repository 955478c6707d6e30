//! People who sign in through an identity provider (OpenID Connect, LDAP): each becomes an identity of kind
//! `human` the first time, recorded in the ledger like any other (`identity.created`, with where it came
//! from), and its roles and scopes follow its groups at every sign-in (`identity.updated` when they change).
//! An admin can still suspend or revoke such an identity; a suspended one cannot sign in.

use ledger_core::NewEvent;
use serde_json::json;
use sha2::{Digest, Sha256};
use storage::{IdentityRow, StorageError};

use crate::identity::{Caller, Directory, Identity, Role, Status};
use crate::{GatewayError, now};

impl Directory {
    /// The caller for someone an identity provider vouched for, with what their groups grant now.
    pub async fn sign_in_external(
        &self,
        user: &auth::ExternalUser,
        grants: &auth::Grants,
    ) -> Result<Caller, GatewayError> {
        let mut roles: Vec<Role> = grants.roles.iter().filter_map(|r| Role::parse(r)).collect();
        roles.sort_by_key(|r| r.as_str());
        roles.dedup();
        if roles.is_empty() {
            return Err(GatewayError::Forbidden(format!(
                "{} signed in, but none of their groups grants a role here (groups: {})",
                user.username,
                if user.groups.is_empty() {
                    "none".to_owned()
                } else {
                    user.groups.join(", ")
                }
            )));
        }
        // The same person (source, issuer, subject) is always the same identity.
        let digest = Sha256::digest(format!("{}\0{}\0{}", user.source, user.issuer, user.subject).as_bytes());
        let id = format!("usr_{}", &hex::encode(digest)[..32]);
        let roles_json = serde_json::to_string(&roles).expect("roles serialize");
        let scopes_json = serde_json::to_string(&grants.scopes).expect("scopes serialize");
        let source = json!({"kind": user.source, "issuer": user.issuer, "subject": user.subject,
                            "groups": user.groups});
        let store = self.store();
        let identity = match store.identity(&id).await? {
            Some(row) => {
                let current = Identity::from_row(&row);
                if current.status != Status::Active {
                    return Err(GatewayError::Unauthorized(format!(
                        "identity {} is {}",
                        current.name,
                        current.status.as_str()
                    )));
                }
                if current.roles != roles || current.scopes != grants.scopes {
                    // Recorded first: a change of rights is a state change the ledger must hold.
                    self.ledger()
                        .append(NewEvent::new(
                            "identity.updated",
                            "system",
                            json!({"identity_id": id, "roles": roles, "scopes": grants.scopes,
                                   "previous": {"roles": current.roles, "scopes": current.scopes},
                                   "reason": "group membership at sign-in", "source": source}),
                        ))
                        .await?;
                    store
                        .update_identity_grants(&id, &roles_json, &scopes_json, &now())
                        .await?;
                }
                store
                    .identity(&id)
                    .await?
                    .map(|row| Identity::from_row(&row))
                    .ok_or_else(|| GatewayError::NotFound(format!("identity {id} vanished")))?
            }
            None => {
                self.create_external(&id, user, &roles_json, &scopes_json, source)
                    .await?
            }
        };
        Ok(Caller {
            identity,
            key_id: user.source.to_owned(),
        })
    }

    async fn create_external(
        &self,
        id: &str,
        user: &auth::ExternalUser,
        roles: &str,
        scopes: &str,
        source: serde_json::Value,
    ) -> Result<Identity, GatewayError> {
        let at = now();
        let mut row = IdentityRow {
            id: id.to_owned(),
            name: format!("{}:{}", user.source, user.username),
            kind: "human".into(),
            roles: roles.to_owned(),
            scopes: scopes.to_owned(),
            status: Status::Active.as_str().into(),
            created_at: at.clone(),
            created_by: "system".into(),
            updated_at: at,
            recorded_entry: None,
        };
        let store = self.store();
        match store.insert_external_identity(&row).await {
            Ok(()) => {}
            // Another sign-in of the same person won the race: use theirs.
            Err(StorageError::Conflict(_)) if store.identity(id).await?.is_some() => {
                return self.get(id).await;
            }
            // Someone else has the name: keep the person apart with a piece of the id.
            Err(StorageError::Conflict(_)) => {
                row.name = format!("{}:{}-{}", user.source, user.username, &id[4..12]);
                store.insert_external_identity(&row).await.map_err(|e| match e {
                    StorageError::Conflict(message) => GatewayError::Conflict(message),
                    other => other.into(),
                })?;
            }
            Err(other) => return Err(other.into()),
        }
        let identity = Identity::from_row(&row);
        let event = NewEvent::new(
            "identity.created",
            "system",
            json!({"identity": identity, "source": source}),
        );
        let entry = match self.ledger().append(event).await {
            Ok(entry) => entry,
            Err(error) => {
                store.remove_unrecorded_identity(id).await.ok();
                return Err(error.into());
            }
        };
        store.mark_identity_recorded(id, &entry.id).await?;
        Ok(identity)
    }
}

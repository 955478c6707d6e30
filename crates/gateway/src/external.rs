//! People who sign in through an identity provider (OpenID Connect, LDAP): each becomes an identity of kind
//! `human` the first time, recorded in the ledger like any other (`identity.created`, with where it came
//! from), and its roles and scopes follow its groups at every sign-in (`identity.updated` when they change).
//! An admin can still suspend or revoke such an identity; a suspended one cannot sign in.

use domain::IdentityKind;
use ledger_core::NewEvent;
use sha2::{Digest, Sha256};
use storage::{GrantsText, IdentityRow, StorageError};

use crate::identity::{Caller, Directory, Identity, IdentityStatus, Role};
use crate::payloads::{Grants, IdentityUpdated, SignInSource, SignedInIdentityCreated};
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
        let scopes = if roles.is_empty() {
            Vec::new()
        } else {
            grants.scopes.clone()
        };
        let groups = crate::groups::provider_groups(&user.groups);
        // The same person (source, issuer, subject) is always the same identity.
        let digest = Sha256::digest(format!("{}\0{}\0{}", user.source, user.issuer, user.subject).as_bytes());
        let id = format!("usr_{}", &hex::encode(digest)[..32]);
        let store = self.store();
        let existing = store.identity(&id).await?.map(|row| Identity::from_row(&row));
        if let Some(current) = &existing {
            if current.status != IdentityStatus::Active {
                return Err(GatewayError::Unauthorized(format!(
                    "identity {} is {}",
                    current.name,
                    current.status.as_str()
                )));
            }
            if current.roles != roles || current.scopes != scopes || current.groups != groups {
                let now_granted = (roles.as_slice(), scopes.as_slice(), groups.as_slice());
                self.record_grants(&id, current, now_granted, user).await?;
            }
        }
        if roles.is_empty() {
            // Refused; someone who left every mapped group kept no rights here either (recorded above).
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
        let identity = match existing {
            Some(_) => self.get(&id).await?,
            None => {
                let roles_json = serde_json::to_string(&roles).expect("roles serialize");
                let scopes_json = serde_json::to_string(&scopes).expect("scopes serialize");
                let groups_json = serde_json::to_string(&groups).expect("groups serialize");
                let granted = GrantsText {
                    roles: &roles_json,
                    scopes: &scopes_json,
                    member_of: &groups_json,
                };
                self.create_external(&id, user, granted).await?
            }
        };
        Ok(Caller {
            identity,
            key_id: user.source.to_owned(),
        })
    }

    /// Changes an identity's rights to what its groups grant now, if nobody changed them meanwhile (two
    /// sign-ins at once: one records, the other finds it done), and records the change; the table goes back
    /// if the entry cannot be written, so it never disagrees with the ledger.
    async fn record_grants(
        &self,
        id: &str,
        current: &Identity,
        (roles, scopes, groups): (&[Role], &[executor::Scope], &[String]),
        user: &auth::ExternalUser,
    ) -> Result<(), GatewayError> {
        // Serialized as the rows were written (struct field order), so the comparison is exact.
        let json = |value: serde_json::Result<String>| value.expect("grants serialize");
        let (old_r, old_s, old_g) = (
            json(serde_json::to_string(&current.roles)),
            json(serde_json::to_string(&current.scopes)),
            json(serde_json::to_string(&current.groups)),
        );
        let (new_r, new_s, new_g) = (
            json(serde_json::to_string(roles)),
            json(serde_json::to_string(scopes)),
            json(serde_json::to_string(groups)),
        );
        let from = GrantsText {
            roles: &old_r,
            scopes: &old_s,
            member_of: &old_g,
        };
        let to = GrantsText {
            roles: &new_r,
            scopes: &new_s,
            member_of: &new_g,
        };
        let store = self.store();
        if !store.update_identity_grants(id, &from, &to, &now()).await? {
            return Ok(());
        }
        let updated = IdentityUpdated {
            identity_id: id,
            roles,
            scopes,
            groups,
            previous: Grants {
                roles: &current.roles,
                scopes: &current.scopes,
                groups: &current.groups,
            },
            reason: "group membership at sign-in",
            source: SignInSource::from(user),
        };
        let recorded = self.ledger().append(NewEvent::of("system", &updated)).await;
        if let Err(error) = recorded {
            store.update_identity_grants(id, &to, &from, &now()).await.ok();
            return Err(error.into());
        }
        Ok(())
    }

    async fn create_external(
        &self,
        id: &str,
        user: &auth::ExternalUser,
        granted: GrantsText<'_>,
    ) -> Result<Identity, GatewayError> {
        let at = now();
        let mut row = IdentityRow {
            id: id.to_owned(),
            name: format!("{}:{}", user.source, user.username),
            kind: IdentityKind::Human.as_str().into(),
            roles: granted.roles.to_owned(),
            scopes: granted.scopes.to_owned(),
            status: IdentityStatus::Active.as_str().into(),
            created_at: at.clone(),
            created_by: "system".into(),
            updated_at: at,
            member_of: granted.member_of.to_owned(),
            recorded_entry: None,
        };
        let store = self.store();
        match store.insert_external_identity(&row).await {
            Ok(()) => {}
            // Another sign-in of the same person won the race: use theirs.
            Err(StorageError::Conflict(_)) if store.identity(id).await?.is_some() => {
                return self.get(id).await;
            }
            Err(StorageError::Conflict(_)) if store.identity_row_exists(id).await? => {
                return Err(GatewayError::Unavailable(
                    "this person's first sign-in is being recorded right now; try again in a moment".into(),
                ));
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
        let created = SignedInIdentityCreated {
            identity: &identity,
            source: SignInSource::from(user),
        };
        let event = NewEvent::of("system", &created);
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

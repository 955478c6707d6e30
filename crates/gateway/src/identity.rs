//! Identities, their roles and scopes, and their API keys (SPEC §2).
//!
//! Every change is a ledger entry. A new identity or key is written to the lookup tables first (not yet
//! effective), then recorded in the ledger, then marked recorded: so it can be used only once its entry
//! is durable. A suspension or revocation takes effect in the tables first (the safe direction), then is
//! recorded.

use domain::payload::{IdentityStatusChanged, KeyIssued, KeyRef, KeyRevoked};
use executor::Scope;
use ledger_core::{Entry, NewEvent};
use serde::{Deserialize, Serialize};
use storage::{ApiKeyRow, IdentityRow, Ledger, StorageError, Store};

use crate::apikey::{self, KeyKind};
use crate::payloads::IdentityCreated;
use crate::{GatewayError, new_id, now};

pub use crate::groups::{MAX_GROUPS, checked_groups, in_group};
pub use domain::{IdentityKind, IdentityStatus, Role};

/// An identity as the API shows it (SPEC §2).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Identity {
    /// `agt_…` for an agent, `usr_…` for a person.
    pub id: String,
    /// The unique name it was created with.
    pub name: String,
    /// Agent or human.
    pub kind: IdentityKind,
    /// What it may do in the gateway (sorted, no duplicates).
    pub roles: Vec<Role>,
    /// Where in the clusters its actions may reach.
    pub scopes: Vec<Scope>,
    /// The groups it is in: given by an admin, or the groups its OIDC/LDAP sign-in reported. Two-person
    /// rules by group count an approver for a group it is in (compared without regard to ASCII case).
    pub groups: Vec<String>,
    /// Active, suspended or revoked; only an active identity authenticates.
    pub status: IdentityStatus,
    /// When it was created (the ledger's timestamp format).
    pub created_at: String,
    /// Who created it: an identity's id, or `system` (the bootstrap admin, a first sign-in through OIDC or LDAP).
    pub created_by: String,
}

impl Identity {
    /// Whether the identity holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub(crate) fn from_row(row: &IdentityRow) -> Identity {
        Identity {
            id: row.id.clone(),
            name: row.name.clone(),
            kind: IdentityKind::parse(&row.kind).unwrap_or(IdentityKind::Human),
            // Written by this module from validated values; an unreadable value grants nothing.
            roles: serde_json::from_str::<Vec<String>>(&row.roles)
                .unwrap_or_default()
                .iter()
                .filter_map(|r| Role::parse(r))
                .collect(),
            scopes: serde_json::from_str(&row.scopes).unwrap_or_default(),
            groups: serde_json::from_str(&row.member_of).unwrap_or_default(),
            status: IdentityStatus::parse_or_revoked(&row.status),
            created_at: row.created_at.clone(),
            created_by: row.created_by.clone(),
        }
    }
}

/// A request to create an identity (API body and CLI flags). Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIdentity {
    /// 1 to 64 characters of letters, digits, `.`, `_`, `@` and `-`; unique.
    #[schema(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    pub name: String,
    /// Agent or human; sets the id's and the keys' prefix.
    pub kind: IdentityKind,
    /// At least one role, by name; an unknown name is refused.
    #[schema(value_type = Vec<Role>, min_items = 1)]
    pub roles: Vec<String>,
    /// Where its actions may reach; left out, it reaches nothing.
    #[serde(default)]
    pub scopes: Vec<Scope>,
    /// The groups it is in (up to 64 names of 1 to 256 printable characters); left out, none. A person
    /// signing in through OIDC or LDAP gets the groups the provider reports instead.
    #[serde(default)]
    #[schema(schema_with = crate::groups::group_names)]
    pub groups: Vec<String>,
}

/// An API key's public record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// `key_…`; never the secret.
    pub id: String,
    /// The identity the key belongs to.
    pub identity_id: String,
    /// `active` or `revoked`.
    pub status: domain::KeyStatus,
    /// When the key was issued.
    pub created_at: String,
    /// When the key was revoked, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl From<&ApiKeyRow> for KeyInfo {
    fn from(row: &ApiKeyRow) -> Self {
        KeyInfo {
            id: row.id.clone(),
            identity_id: row.identity_id.clone(),
            status: row.status,
            created_at: row.created_at.clone(),
            revoked_at: row.revoked_at.clone(),
        }
    }
}

/// A new key, shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedKey {
    /// The key's public record.
    pub key: KeyInfo,
    /// The secret: returned once, stored only as its SHA-256 digest.
    pub api_key: String,
    /// The entry that recorded the key (`identity.created`, `key.issued` or `key.rotated`).
    pub ledger_entry_id: String,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who is calling, as of this request.
    pub identity: Identity,
    /// The id of the API key presented; for a sign-in without one, where it came from (`oidc`, `ldap`,
    /// `dashboard-session`).
    pub key_id: String,
}

impl Caller {
    /// The actor name written into ledger entries.
    pub fn actor(&self) -> &str {
        &self.identity.id
    }

    /// `Forbidden` (403) unless the caller's identity holds `role`.
    pub fn require(&self, role: Role) -> Result<(), GatewayError> {
        if self.identity.has_role(role) {
            Ok(())
        } else {
            Err(GatewayError::Forbidden(format!(
                "this needs the {role} role; {} has {}",
                self.identity.name,
                if self.identity.roles.is_empty() {
                    "none".to_owned()
                } else {
                    self.identity
                        .roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )))
        }
    }
}

/// Identities and keys over the store and the ledger.
#[derive(Debug, Clone)]
pub struct Directory {
    store: Store,
    ledger: Ledger,
}

impl Directory {
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}

fn validate(new: &NewIdentity) -> Result<(Vec<Role>, Vec<String>), GatewayError> {
    let name_ok = !new.name.is_empty()
        && new.name.len() <= 64
        && new
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if !name_ok {
        return Err(GatewayError::BadRequest(format!(
            "name {:?} is not valid: 1 to 64 characters of A-Z, a-z, 0-9, '-', '_', '.', '@'",
            new.name
        )));
    }
    if new.roles.is_empty() {
        return Err(GatewayError::BadRequest("an identity needs at least one role".into()));
    }
    let mut roles = Vec::new();
    for role in &new.roles {
        let parsed = Role::parse(role).ok_or_else(|| {
            GatewayError::BadRequest(format!(
                "unknown role {role:?}; expected admin, operator, approver or auditor"
            ))
        })?;
        if !roles.contains(&parsed) {
            roles.push(parsed);
        }
    }
    roles.sort();
    for scope in &new.scopes {
        scope.validate().map_err(GatewayError::BadRequest)?;
    }
    let groups = checked_groups(&new.groups).map_err(GatewayError::BadRequest)?;
    Ok((roles, groups))
}

impl Directory {
    /// A directory over `store`'s identity tables, recording changes in `ledger`.
    pub fn new(store: Store, ledger: Ledger) -> Self {
        Self { store, ledger }
    }

    /// Creates an identity with a first API key (returned once) and records it.
    pub async fn create(&self, actor: &str, new: NewIdentity) -> Result<(Identity, IssuedKey), GatewayError> {
        let key = apikey::generate(KeyKind::from(new.kind));
        let (identity, info, entry) = self
            .create_with_digest(actor, new, &apikey::digest(&key), false)
            .await?;
        Ok((
            identity,
            IssuedKey {
                key: info,
                api_key: key,
                ledger_entry_id: entry.id,
            },
        ))
    }

    /// Creates an identity whose first key is known only by its digest (the bootstrap admin).
    pub async fn create_with_digest(
        &self,
        actor: &str,
        new: NewIdentity,
        digest: &str,
        bootstrap: bool,
    ) -> Result<(Identity, KeyInfo, Entry), GatewayError> {
        let (roles, groups) = validate(&new)?;
        let at = now();
        let row = IdentityRow {
            id: new_id(new.kind.id_prefix()),
            name: new.name.clone(),
            kind: new.kind.as_str().into(),
            roles: serde_json::to_string(&roles).expect("roles serialize"),
            scopes: serde_json::to_string(&new.scopes).expect("scopes serialize"),
            status: IdentityStatus::Active.as_str().into(),
            created_at: at.clone(),
            created_by: actor.into(),
            updated_at: at.clone(),
            member_of: serde_json::to_string(&groups).expect("groups serialize"),
            recorded_entry: None,
        };
        let key = ApiKeyRow {
            id: new_id("key"),
            identity_id: row.id.clone(),
            digest: digest.into(),
            status: domain::KeyStatus::Active,
            created_at: at,
            revoked_at: None,
            recorded_entry: None,
            issued_by: Some(actor.into()),
        };
        self.store.insert_identity(&row, &key).await.map_err(|e| match e {
            StorageError::Conflict(message) => GatewayError::Conflict(message),
            other => GatewayError::from(other),
        })?;
        let identity = Identity::from_row(&row);
        let created = IdentityCreated {
            identity: &identity,
            key: KeyRef {
                id: key.id.clone(),
                digest: digest.into(),
            },
            bootstrap,
        };
        let event = NewEvent::of(actor, &created);
        let entry = match self.ledger.append(event).await {
            Ok(entry) => entry,
            Err(error) => {
                self.store.remove_unrecorded_identity(&row.id).await.ok();
                return Err(error.into());
            }
        };
        self.store.mark_identity_recorded(&row.id, &entry.id).await?;
        Ok((identity, KeyInfo::from(&key), entry))
    }

    /// The identity with this id; `NotFound` (404) if there is none.
    pub async fn get(&self, id: &str) -> Result<Identity, GatewayError> {
        self.store
            .identity(id)
            .await?
            .map(|row| Identity::from_row(&row))
            .ok_or_else(|| GatewayError::NotFound(format!("no identity {id:?}")))
    }

    /// Up to `limit` identities (1 to 1,000) in creation order, after the identity `after`.
    pub async fn list(&self, after: Option<&str>, limit: u32) -> Result<Vec<Identity>, GatewayError> {
        Ok(self
            .store
            .identities_page(after, limit)
            .await?
            .iter()
            .map(Identity::from_row)
            .collect())
    }

    /// The names of the identities among `ids`, by id (to show names instead of ids).
    pub async fn names(&self, ids: &[String]) -> Result<std::collections::HashMap<String, String>, GatewayError> {
        Ok(self.store.identity_names(ids).await?.into_iter().collect())
    }

    /// Whether an active admin exists (one query, whatever the number of identities).
    pub async fn admin_exists(&self) -> Result<bool, GatewayError> {
        Ok(self.store.active_admin_exists().await?)
    }

    /// Up to `limit` keys (1 to 1,000) of an identity in creation order, after the key `after`.
    pub async fn keys(&self, identity_id: &str, after: Option<&str>, limit: u32) -> Result<Vec<KeyInfo>, GatewayError> {
        self.get(identity_id).await?;
        Ok(self
            .store
            .keys_page(identity_id, after, limit)
            .await?
            .iter()
            .map(KeyInfo::from)
            .collect())
    }

    /// Whether `key_id` is one of the identity's keys.
    pub async fn has_key(&self, identity_id: &str, key_id: &str) -> Result<bool, GatewayError> {
        Ok(self.store.key_exists(identity_id, key_id).await?)
    }

    /// Moves an identity to `to`: `Suspended` (its keys stop working), `Active` (a suspended one again) or
    /// `Revoked` (for good, with every key).
    pub async fn set_status(
        &self,
        actor: &str,
        id: &str,
        to: IdentityStatus,
        reason: Option<String>,
    ) -> Result<(Identity, Entry), GatewayError> {
        self.change_status(actor, id, to, reason).await
    }

    /// [`Directory::set_status`] asked by `caller` (the API's and the dashboard's one rule): an admin only, and
    /// never to suspend or revoke itself (another admin must).
    pub async fn set_status_by(
        &self,
        caller: &Caller,
        id: &str,
        to: IdentityStatus,
        reason: Option<String>,
    ) -> Result<(Identity, Entry), GatewayError> {
        caller.require(Role::Admin)?;
        if caller.identity.id == id && to != IdentityStatus::Active {
            return Err(GatewayError::Forbidden(
                "an admin cannot suspend or revoke itself (ask another admin)".into(),
            ));
        }
        self.change_status(caller.actor(), id, to, reason).await
    }

    async fn change_status(
        &self,
        actor: &str,
        id: &str,
        to: IdentityStatus,
        reason: Option<String>,
    ) -> Result<(Identity, Entry), GatewayError> {
        let current = self.get(id).await?;
        match (current.status, to) {
            (IdentityStatus::Revoked, _) => {
                return Err(GatewayError::Conflict(format!("identity {id} is revoked for good")));
            }
            (from, to) if from == to => {
                return Err(GatewayError::Conflict(format!(
                    "identity {id} is already {}",
                    to.as_str()
                )));
            }
            _ => {}
        }
        let at = now();
        if !self
            .store
            .set_identity_status(id, current.status.as_str(), to.as_str(), &at)
            .await?
        {
            return Err(GatewayError::Conflict(format!(
                "identity {id} changed meanwhile; look again"
            )));
        }
        let revoked_keys = if to == IdentityStatus::Revoked {
            self.store.revoke_keys_of(id, &at).await?
        } else {
            Vec::new()
        };
        let change = IdentityStatusChanged {
            identity_id: id.to_owned(),
            from: current.status,
            to,
            reason,
            revoked_keys,
        };
        let entry = self.ledger.append(NewEvent::of(actor, &change)).await?;
        Ok((self.get(id).await?, entry))
    }

    /// Issues an additional key for an identity.
    pub async fn issue_key(&self, actor: &str, identity_id: &str) -> Result<IssuedKey, GatewayError> {
        let identity = self.get(identity_id).await?;
        if identity.status == IdentityStatus::Revoked {
            return Err(GatewayError::Conflict(format!("identity {identity_id} is revoked")));
        }
        let (key, info, entry) = self.new_key(actor, &identity, None).await?;
        Ok(IssuedKey {
            key: info,
            api_key: key,
            ledger_entry_id: entry.id,
        })
    }

    /// Replaces a key: a new one is issued and the old one revoked, in one ledger entry.
    pub async fn rotate_key(&self, actor: &str, identity_id: &str, key_id: &str) -> Result<IssuedKey, GatewayError> {
        let identity = self.get(identity_id).await?;
        self.active_key(identity_id, key_id).await?;
        if identity.status == IdentityStatus::Revoked {
            return Err(GatewayError::Conflict(format!("identity {identity_id} is revoked")));
        }
        // Revoke first: if recording fails below, the old key is already dead (the safe side).
        self.store.revoke_key(key_id, &now()).await?;
        let (key, info, entry) = self.new_key(actor, &identity, Some(key_id)).await?;
        Ok(IssuedKey {
            key: info,
            api_key: key,
            ledger_entry_id: entry.id,
        })
    }

    /// Revokes one active key of an identity and records it. An identity cannot revoke its own last active
    /// key (`Conflict`, 409): that would lock it out.
    pub async fn revoke_key(
        &self,
        actor: &str,
        identity_id: &str,
        key_id: &str,
    ) -> Result<(KeyInfo, Entry), GatewayError> {
        let identity = self.get(identity_id).await?;
        self.active_key(identity_id, key_id).await?;
        if actor == identity_id && self.active_keys(identity_id).await? <= 1 {
            return Err(GatewayError::Conflict(format!(
                "{key_id} is the last active key of {}: revoking it would lock {} out; issue a new key first \
                 (or ask another admin)",
                identity.name, identity.name
            )));
        }
        self.store.revoke_key(key_id, &now()).await?;
        let entry = self
            .ledger
            .append(NewEvent::of(
                actor,
                &KeyRevoked {
                    identity_id: identity_id.to_owned(),
                    key_id: key_id.to_owned(),
                },
            ))
            .await?;
        let key = self
            .store
            .keys_of(identity_id)
            .await?
            .iter()
            .find(|k| k.id == key_id)
            .map(KeyInfo::from)
            .ok_or_else(|| GatewayError::NotFound(format!("no key {key_id:?}")))?;
        Ok((key, entry))
    }

    async fn active_keys(&self, identity_id: &str) -> Result<usize, GatewayError> {
        let keys = self.store.keys_of(identity_id).await?;
        Ok(keys.iter().filter(|k| k.status == domain::KeyStatus::Active).count())
    }

    async fn active_key(&self, identity_id: &str, key_id: &str) -> Result<(), GatewayError> {
        let keys = self.store.keys_of(identity_id).await?;
        match keys.iter().find(|k| k.id == key_id) {
            None => Err(GatewayError::NotFound(format!(
                "identity {identity_id} has no key {key_id:?}"
            ))),
            Some(k) if k.status != domain::KeyStatus::Active => {
                Err(GatewayError::Conflict(format!("key {key_id} is already revoked")))
            }
            Some(_) => Ok(()),
        }
    }

    async fn new_key(
        &self,
        actor: &str,
        identity: &Identity,
        replaces: Option<&str>,
    ) -> Result<(String, KeyInfo, Entry), GatewayError> {
        let key = apikey::generate(KeyKind::from(identity.kind));
        let row = ApiKeyRow {
            id: new_id("key"),
            identity_id: identity.id.clone(),
            digest: apikey::digest(&key),
            status: domain::KeyStatus::Active,
            created_at: now(),
            revoked_at: None,
            recorded_entry: None,
            issued_by: Some(actor.into()),
        };
        self.store.insert_key(&row).await?;
        let issued = KeyIssued {
            identity_id: identity.id.clone(),
            key: KeyRef {
                id: row.id.clone(),
                digest: row.digest.clone(),
            },
            replaces: replaces.map(str::to_owned),
        };
        let entry = match self.ledger.append(NewEvent::of(actor, &issued)).await {
            Ok(entry) => entry,
            Err(error) => {
                self.store.remove_unrecorded_key(&row.id).await.ok();
                return Err(error.into());
            }
        };
        self.store.mark_key_recorded(&row.id, &entry.id).await?;
        Ok((key, KeyInfo::from(&row), entry))
    }

    /// Who holds this bearer key. Every failure is 401 with a message that says what to fix.
    pub async fn authenticate(&self, bearer: &str) -> Result<Caller, GatewayError> {
        apikey::parse(bearer).map_err(|e| GatewayError::Unauthorized(e.to_string()))?;
        self.authenticate_digest(&apikey::digest(bearer)).await
    }

    /// Who holds the key with this digest (a dashboard session keeps the digest, never the key), checked
    /// again on every request: a revoked key or a suspended identity ends the session.
    pub async fn authenticate_digest(&self, digest: &str) -> Result<Caller, GatewayError> {
        let found = self
            .store
            .key_by_digest(digest)
            .await?
            .ok_or_else(|| GatewayError::Unauthorized("unknown API key".into()))?;
        if found.key.status != domain::KeyStatus::Active {
            return Err(GatewayError::Unauthorized("this API key has been revoked".into()));
        }
        let identity = Identity::from_row(&found.identity);
        match identity.status {
            IdentityStatus::Active => Ok(Caller {
                identity,
                key_id: found.key.id,
            }),
            IdentityStatus::Suspended => Err(GatewayError::Unauthorized(format!(
                "identity {} is suspended",
                identity.name
            ))),
            IdentityStatus::Revoked => Err(GatewayError::Unauthorized(format!(
                "identity {} is revoked",
                identity.name
            ))),
        }
    }
}

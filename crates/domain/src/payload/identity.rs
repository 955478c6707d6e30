//! The identity and key family written from the domain's own vocabulary. (`identity.created` and
//! `identity.updated` carry the gateway's `Identity` and live there.)

use serde::{Deserialize, Serialize};

use super::Payload;
use crate::{EntryKind, IdentityStatus};

/// `identity.suspended`, `identity.reactivated` or `identity.revoked`: the kind follows from `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityStatusChanged {
    /// The identity.
    pub identity_id: String,
    /// Its status before.
    pub from: IdentityStatus,
    /// Its status now.
    pub to: IdentityStatus,
    /// Why, as the admin (or the system) said.
    pub reason: Option<String>,
    /// The keys revoked with it (a revocation revokes every active key).
    pub revoked_keys: Vec<String>,
}

/// A key as entries name it: its id and the SHA-256 digest the gateway keeps (never the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    /// The key's id.
    pub id: String,
    /// `sha256:<hex>` of the key.
    pub digest: String,
}

/// `key.issued`, or `key.rotated` when it `replaces` a key (revoked in the same step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyIssued {
    /// The identity the key belongs to.
    pub identity_id: String,
    /// The new key.
    pub key: KeyRef,
    /// The key this one replaces, for a rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// `key.revoked`: one key of an identity stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRevoked {
    /// The identity.
    pub identity_id: String,
    /// The key revoked.
    pub key_id: String,
}

impl Payload for IdentityStatusChanged {
    fn kind(&self) -> EntryKind {
        match self.to {
            IdentityStatus::Suspended => EntryKind::IdentitySuspended,
            IdentityStatus::Active => EntryKind::IdentityReactivated,
            IdentityStatus::Revoked => EntryKind::IdentityRevoked,
        }
    }
}
impl Payload for KeyIssued {
    fn kind(&self) -> EntryKind {
        match self.replaces {
            Some(_) => EntryKind::KeyRotated,
            None => EntryKind::KeyIssued,
        }
    }
}
impl Payload for KeyRevoked {
    fn kind(&self) -> EntryKind {
        EntryKind::KeyRevoked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_kind_follows_the_change() {
        let mut change = IdentityStatusChanged {
            identity_id: "agt_1".into(),
            from: IdentityStatus::Active,
            to: IdentityStatus::Suspended,
            reason: None,
            revoked_keys: vec![],
        };
        assert_eq!(change.kind(), EntryKind::IdentitySuspended);
        change.to = IdentityStatus::Revoked;
        assert_eq!(change.kind(), EntryKind::IdentityRevoked);
        assert_eq!(
            change.to_value(),
            json!({"identity_id": "agt_1", "from": "active", "to": "revoked", "reason": null, "revoked_keys": []})
        );
        let mut key = KeyIssued {
            identity_id: "agt_1".into(),
            key: KeyRef {
                id: "key_1".into(),
                digest: "sha256:00".into(),
            },
            replaces: None,
        };
        assert_eq!(key.kind(), EntryKind::KeyIssued);
        assert_eq!(
            key.to_value(),
            json!({"identity_id": "agt_1", "key": {"id": "key_1", "digest": "sha256:00"}})
        );
        key.replaces = Some("key_0".into());
        assert_eq!(key.kind(), EntryKind::KeyRotated);
        assert_eq!(key.to_value()["replaces"], "key_0");
    }
}

//! What the identity administration's templates show: the new-identity form, a key shown once, and the
//! identity page with an admin's controls (keys, status changes).

use askama::Template;
use gateway::{IdentityStatus, KeyInfo};

use super::form::IdentityFormView;
use crate::dashboard::views::{IdentityView, Nav, TrustChangeView, TrustChart};

/// The form to create an identity; shown again with `error` and the values sent when it was refused.
#[derive(Debug, Template)]
#[template(path = "identity_new.html")]
pub struct NewIdentityPage {
    pub nav: Nav,
    pub error: Option<String>,
    pub form: IdentityFormView,
}

/// What made the key shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKey {
    /// A new identity's first key.
    Created,
    /// An additional key.
    Issued,
    /// A key that replaces another.
    Rotated,
}

/// A new API key, shown this once.
#[derive(Debug, Template)]
#[template(path = "key_issued.html")]
pub struct KeyIssuedPage {
    pub nav: Nav,
    /// The page's heading.
    pub heading: &'static str,
    pub identity_id: String,
    pub identity_name: String,
    pub key_id: String,
    /// The secret.
    pub api_key: String,
    /// The key this one replaces (revoked), for a rotation.
    pub replaces: Option<String>,
    /// The entry that recorded it.
    pub ledger_entry_id: String,
}

impl NewKey {
    /// The heading of the page that shows the key.
    pub fn heading(self) -> &'static str {
        match self {
            NewKey::Created => "Identity created",
            NewKey::Issued => "Key issued",
            NewKey::Rotated => "Key rotated",
        }
    }
}

/// One key in the admin's keys table.
#[derive(Debug, Clone)]
pub struct KeyView {
    pub id: String,
    pub status: &'static str,
    pub created_at: String,
    pub revoked_at: String,
    /// Still works (Rotate and Revoke are offered).
    pub active: bool,
}

impl From<&KeyInfo> for KeyView {
    fn from(key: &KeyInfo) -> Self {
        KeyView {
            id: key.id.clone(),
            status: key.status.as_str(),
            created_at: key.created_at.clone(),
            revoked_at: key.revoked_at.clone().unwrap_or_default(),
            active: key.status == domain::KeyStatus::Active,
        }
    }
}

/// A status change offered to the admin: one form each.
#[derive(Debug, Clone)]
pub struct StatusChange {
    /// The status it moves to, as the form sends it.
    pub to: &'static str,
    /// The button's text.
    pub label: &'static str,
    /// Shown as dangerous, with a confirmation box (revoking is for good).
    pub confirm: bool,
}

/// The status changes an identity in `status` can make (none for a revoked one).
pub fn status_changes(status: IdentityStatus) -> Vec<StatusChange> {
    let change = |to: IdentityStatus, label, confirm| StatusChange {
        to: to.as_str(),
        label,
        confirm,
    };
    let revoke = change(IdentityStatus::Revoked, "Revoke identity", true);
    match status {
        IdentityStatus::Active => vec![change(IdentityStatus::Suspended, "Suspend identity", false), revoke],
        IdentityStatus::Suspended => vec![change(IdentityStatus::Active, "Reactivate identity", false), revoke],
        IdentityStatus::Revoked => Vec::new(),
    }
}

/// The identity page (`identity.html`'s fields) with an admin's controls in its `admin` block.
#[derive(Debug, Template)]
#[template(path = "identity_admin.html")]
pub struct IdentityAdminPage {
    pub nav: Nav,
    pub identity: IdentityView,
    pub changes: Vec<TrustChangeView>,
    pub chart: TrustChart,
    pub older: Option<u64>,
    pub newer: bool,
    pub as_of_seq: u64,
    /// The identity's first keys.
    pub keys: Vec<KeyView>,
    /// More keys exist than shown.
    pub more_keys: bool,
    /// A key may be issued (the identity is not revoked).
    pub may_issue: bool,
    /// The status changes offered (none on the admin's own page).
    pub status_changes: Vec<StatusChange>,
    /// The admin's own page.
    pub own: bool,
}

//! The rows beside the seeded entries (`seed`): identities and their keys, actions and approvals, written in
//! bulk once their entries are durable.

use domain::{ActionStatus, EntryKind};
use std::ops::Range;

use ledger_core::{Digest, Entry, NewEvent};
use serde_json::{Value, json};
use sqlx::QueryBuilder;
use time::OffsetDateTime;

use crate::directory::{ACTION_COLUMNS, IDENTITY_COLUMNS, KEY_COLUMNS};
use crate::seed::seed_id;
use crate::{ActionRow, ApiKeyRow, ApprovalRow, Backend, IdentityRow, StorageError, Store, with_writer};

/// How a seeded action ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Completed,
    Read,
    Denied,
    Approved,
    Pending,
    Expired,
    Failed,
    VerifyFailed,
    Rejected,
}

/// The mix: about 68% completed changes, 10% reads, 8% denials, 5% approved after a hold, 3% still pending,
/// 3% held and expired (a tenth of those still pending: the window is a day), 5% failures (execution or
/// verification) and 1% rejected; about 4.8 entries per action.
pub(crate) fn outcome_of(mix: u64) -> Outcome {
    match (mix >> 32) % 100 {
        0..=61 | 94.. => Outcome::Completed,
        62..=71 => Outcome::Read,
        72..=79 => Outcome::Denied,
        80..=84 => Outcome::Approved,
        85..=87 if (mix >> 48).is_multiple_of(10) => Outcome::Pending,
        85..=87 => Outcome::Expired,
        88..=90 => Outcome::Failed,
        91..=92 => Outcome::VerifyFailed,
        _ => Outcome::Rejected,
    }
}

impl Outcome {
    pub(crate) fn risk(self) -> &'static str {
        match self {
            Outcome::Read => "LOW",
            Outcome::Approved | Outcome::Pending | Outcome::Expired | Outcome::Rejected => "HIGH",
            _ => "MEDIUM",
        }
    }

    pub(crate) fn decision(self) -> &'static str {
        match self {
            Outcome::Denied => "deny",
            Outcome::Approved | Outcome::Pending | Outcome::Expired | Outcome::Rejected => "require_approval",
            _ => "allow",
        }
    }

    fn status(self) -> ActionStatus {
        match self {
            Outcome::Completed | Outcome::Read | Outcome::Approved => ActionStatus::Completed,
            Outcome::Denied => ActionStatus::Denied,
            Outcome::Pending => ActionStatus::PendingApproval,
            Outcome::Expired => ActionStatus::Expired,
            Outcome::Failed | Outcome::VerifyFailed => ActionStatus::Failed,
            Outcome::Rejected => ActionStatus::Rejected,
        }
    }

    fn held(self) -> bool {
        matches!(
            self,
            Outcome::Approved | Outcome::Pending | Outcome::Expired | Outcome::Rejected
        )
    }

    /// The end of the approval window: a day ahead for the actions left pending, passed for expired ones.
    pub(crate) fn expires_at(self) -> String {
        let ahead = match self {
            Outcome::Pending => 24,
            Outcome::Expired => -1,
            _ => 1,
        };
        ledger_core::entry::format_timestamp(OffsetDateTime::now_utc() + time::Duration::hours(ahead))
    }
}

/// One chunk's actions, with where their entries are in the chunk's append.
#[derive(Default)]
pub(crate) struct Chunk {
    plans: Vec<Planned>,
}

struct Planned {
    id: String,
    requester: String,
    approver: String,
    outcome: Outcome,
    request: Value,
    entries: Range<usize>,
}

impl Chunk {
    pub(crate) fn plan(
        &mut self,
        id: String,
        requester: String,
        approver: String,
        outcome: Outcome,
        request: Value,
        entries: Range<usize>,
    ) {
        self.plans.push(Planned {
            id,
            requester,
            approver,
            outcome,
            request,
            entries,
        });
    }

    /// Writes the actions' rows (final status, last entry) and the approvals, from the durable `entries`.
    pub(crate) async fn insert(&self, store: &Store, entries: &[Entry], cluster: &str) -> Result<(), StorageError> {
        let mut actions = Vec::with_capacity(self.plans.len());
        let mut approvals = Vec::new();
        for plan in &self.plans {
            let own = &entries[plan.entries.clone()];
            let (row, approval) = plan.rows(own, cluster);
            actions.push(row);
            approvals.extend(approval);
        }
        store.insert_actions_bulk(&actions).await?;
        store.insert_approvals_bulk(&approvals).await
    }
}

impl Planned {
    fn rows(&self, own: &[Entry], cluster: &str) -> (ActionRow, Option<ApprovalRow>) {
        let (first, last) = (&own[0], &own[own.len() - 1]);
        let hold = own
            .iter()
            .find(|e| e.kind == EntryKind::ApprovalRequested)
            .and_then(|e| serde_json::from_str::<Value>(&e.payload).ok());
        let field = |name: &str| hold.as_ref().and_then(|h| h[name].as_str()).map(str::to_owned);
        let executed = own
            .iter()
            .any(|e| e.kind == EntryKind::ActionExecuted || e.kind == EntryKind::ActionFailed);
        let row = ActionRow {
            id: self.id.clone(),
            identity_id: self.requester.clone(),
            action_type: self.request["action_type"].as_str().unwrap_or_default().into(),
            namespace: self.request["namespace"].as_str().map(str::to_owned),
            resource_kind: self.request["resource_kind"].as_str().unwrap_or_default().into(),
            resource_name: self.request["resource_name"].as_str().map(str::to_owned),
            status: self.outcome.status(),
            risk: Some(self.outcome.risk().into()),
            decision: Some(json!(self.outcome.decision()).to_string()),
            created_at: first.timestamp.clone(),
            updated_at: last.timestamp.clone(),
            last_entry_id: Some(last.id.clone()),
            // Kept while pending, to preview and execute it once approved.
            request: (self.outcome == Outcome::Pending).then(|| self.request.to_string()),
            approval_digest: field("digest"),
            approvals_required: self.outcome.held().then_some(1),
            expires_at: field("expires_at"),
            cluster: Some(cluster.into()),
            owner: executed.then(|| "gwi_seed_history".to_owned()),
            idempotency_key: None,
            approval_groups: None,
        };
        let approval = own
            .iter()
            .find(|e| e.kind == EntryKind::ApprovalGranted || e.kind == EntryKind::ApprovalDenied)
            .map(|e| ApprovalRow {
                action_id: self.id.clone(),
                approver_id: self.approver.clone(),
                decision: if e.kind == EntryKind::ApprovalGranted {
                    "approve"
                } else {
                    "reject"
                }
                .into(),
                digest: row.approval_digest.clone().unwrap_or_default(),
                created_at: e.timestamp.clone(),
                entry_id: Some(e.id.clone()),
            });
        (row, approval)
    }
}

/// Identities with one key each, recorded by `identity.created` entries as the gateway writes them.
#[derive(Default)]
pub(crate) struct IdentityBatch {
    identities: Vec<IdentityRow>,
    keys: Vec<ApiKeyRow>,
}

impl IdentityBatch {
    /// Adds identity `n` of the run (a human approver or an agent operator); returns its id.
    pub(crate) fn push(&mut self, tag: &str, n: u64, human: bool, actor: &str) -> String {
        let at = ledger_core::entry::format_timestamp(OffsetDateTime::now_utc());
        let (prefix, kind, role, access) = if human {
            ("usr", "human", "approver", "read")
        } else {
            ("agt", "agent", "operator", "mutate")
        };
        let id = seed_id(prefix, tag, n);
        let scopes = json!([{"namespaces": ["*"], "access": access, "kinds": ["*"]}]);
        self.identities.push(IdentityRow {
            id: id.clone(),
            name: format!("seed-{tag}-{kind}-{n}"),
            kind: kind.into(),
            roles: json!([role]).to_string(),
            scopes: scopes.to_string(),
            status: "active".into(),
            created_at: at.clone(),
            created_by: actor.into(),
            updated_at: at.clone(),
            member_of: "[]".into(),
            recorded_entry: None,
        });
        self.keys.push(ApiKeyRow {
            id: seed_id("key", tag, n),
            identity_id: id.clone(),
            // A digest of nothing anyone holds: seeded identities cannot sign in.
            digest: Digest::of(format!("seed-history {tag} {n}").as_bytes()).to_string(),
            status: domain::KeyStatus::Active,
            created_at: at,
            revoked_at: None,
            recorded_entry: None,
            issued_by: Some(actor.into()),
        });
        id
    }

    pub(crate) fn events(&self, actor: &str) -> Vec<NewEvent> {
        self.identities
            .iter()
            .zip(&self.keys)
            .map(|(row, key)| {
                let identity = json!({"id": row.id, "name": row.name, "kind": row.kind,
                    "roles": serde_json::from_str::<Value>(&row.roles).unwrap_or_default(),
                    "scopes": serde_json::from_str::<Value>(&row.scopes).unwrap_or_default(),
                    "status": row.status, "created_at": row.created_at, "created_by": row.created_by});
                let payload =
                    json!({"identity": identity, "key": {"id": key.id, "digest": key.digest}, "bootstrap": false});
                NewEvent::new(EntryKind::IdentityCreated.as_str(), actor, payload)
            })
            .collect()
    }

    /// Inserts the rows, recorded by `entries` (one per identity, in order).
    pub(crate) async fn insert(mut self, store: &Store, entries: &[Entry]) -> Result<(), StorageError> {
        for ((identity, key), entry) in self.identities.iter_mut().zip(&mut self.keys).zip(entries) {
            identity.recorded_entry = Some(entry.id.clone());
            key.recorded_entry = Some(entry.id.clone());
        }
        store.insert_identities_bulk(&self.identities, &self.keys).await
    }
}

/// Rows per multi-row INSERT: SQLite takes at most 32,766 parameters per statement (19 per action row).
const ROWS_PER_INSERT: usize = 1000;

impl Store {
    /// Inserts recorded identities and their keys (seeding; the gateway inserts one at a time).
    pub(crate) async fn insert_identities_bulk(
        &self,
        identities: &[IdentityRow],
        keys: &[ApiKeyRow],
    ) -> Result<(), StorageError> {
        for part in identities.chunks(ROWS_PER_INSERT) {
            with_writer!(self, pool => {
                let mut query = QueryBuilder::new(format!("INSERT INTO identities ({IDENTITY_COLUMNS}) "));
                query.push_values(part, |mut b, r| {
                    b.push_bind(&r.id).push_bind(&r.name).push_bind(&r.kind).push_bind(&r.roles).push_bind(&r.scopes)
                        .push_bind(&r.status).push_bind(&r.created_at).push_bind(&r.created_by)
                        .push_bind(&r.updated_at).push_bind(&r.recorded_entry).push_bind(&r.member_of);
                });
                query.build().execute(pool).await.map(|_| ())
            })?;
        }
        for part in keys.chunks(ROWS_PER_INSERT) {
            with_writer!(self, pool => {
                let mut query = QueryBuilder::new(format!("INSERT INTO api_keys ({KEY_COLUMNS}) "));
                query.push_values(part, |mut b, k| {
                    b.push_bind(&k.id).push_bind(&k.identity_id).push_bind(&k.digest).push_bind(k.status.as_str())
                        .push_bind(&k.created_at).push_bind(&k.revoked_at).push_bind(&k.recorded_entry).push_bind(&k.issued_by);
                });
                query.build().execute(pool).await.map(|_| ())
            })?;
        }
        Ok(())
    }

    /// Inserts action rows in bulk (seeding).
    pub(crate) async fn insert_actions_bulk(&self, actions: &[ActionRow]) -> Result<(), StorageError> {
        for part in actions.chunks(ROWS_PER_INSERT) {
            with_writer!(self, pool => {
                let mut query = QueryBuilder::new(format!("INSERT INTO actions ({ACTION_COLUMNS}) "));
                query.push_values(part, |mut b, a| {
                    b.push_bind(&a.id).push_bind(&a.identity_id).push_bind(&a.action_type).push_bind(&a.namespace)
                        .push_bind(&a.resource_kind).push_bind(&a.resource_name).push_bind(a.status.as_str()).push_bind(&a.risk)
                        .push_bind(&a.decision).push_bind(&a.created_at).push_bind(&a.updated_at)
                        .push_bind(&a.last_entry_id).push_bind(&a.request).push_bind(&a.approval_digest)
                        .push_bind(a.approvals_required).push_bind(&a.expires_at).push_bind(&a.cluster)
                        .push_bind(&a.owner).push_bind(&a.idempotency_key).push_bind(&a.approval_groups);
                });
                query.build().execute(pool).await.map(|_| ())
            })?;
        }
        Ok(())
    }

    /// Inserts approval rows in bulk (seeding).
    pub(crate) async fn insert_approvals_bulk(&self, approvals: &[ApprovalRow]) -> Result<(), StorageError> {
        for part in approvals.chunks(ROWS_PER_INSERT) {
            with_writer!(self, pool => {
                let mut query = QueryBuilder::new(
                    "INSERT INTO approvals (action_id, approver_id, decision, digest, created_at, entry_id) ",
                );
                query.push_values(part, |mut b, a| {
                    b.push_bind(&a.action_id).push_bind(&a.approver_id).push_bind(&a.decision)
                        .push_bind(&a.digest).push_bind(&a.created_at).push_bind(&a.entry_id);
                });
                query.build().execute(pool).await.map(|_| ())
            })?;
        }
        Ok(())
    }
}

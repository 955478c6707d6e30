//! The governed action pipeline (SPEC §4): each step a ledger entry, in this order —
//! `action.requested` → guardrails (`guardrail.denied` ends it) → preview (server-side dry-run) →
//! `risk.classified` → `policy.decided` → `action.executed` / `action.failed` → `outcome.verified`
//! (a dry run ends after `policy.decided` with `action.previewed`, see `dry_run`).
//! A request that is not a valid action is recorded as `action.rejected` and answered 400.
//!
//! Every Kubernetes call of an action carries `Audit-ID` = the id of its `action.requested` entry.

use domain::payload::{ActionFailed, Payload};
use domain::{ActionStatus, EntryKind};
use std::str::FromStr;
use std::sync::Arc;

use executor::{Action, ActionRequest, CallContext, ExecError, Operation};
use ledger_core::{Digest, Entry, LedgerPublicKey, NewEvent};
use policy::{Outcome, PolicyEngine, RiskConfig, RiskContext};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use storage::{ActionFilter, ActionRow, Ledger, Store};
use tracing::Instrument as _;

use crate::Cluster;
use crate::identity::{Caller, Role};
use crate::metrics::Metrics;
use crate::ownership::Owner;
use crate::sizes;
use crate::{GatewayError, new_id, now};

mod approval_groups;
mod approvals;
mod breakers;
mod budgets;
mod decision;
mod execute;
mod freeze;
mod judge;
mod redaction;
mod submit;
mod views;

pub use approvals::Verdict;
use approvals::{approval_digest, signature_verifies};
pub use breakers::{Breakers, Trip};
pub use budgets::{BudgetLimit, Budgets, Per};
pub(crate) use freeze::refusal as freeze_refusal;
pub use freeze::{Freeze, FreezeSettings};
use judge::{Held, Judged};
pub(crate) use redaction::{ledger_safe, redact_request, request_sha256};
use views::action_view;

/// `ledger`: decisions are recorded as what policy would have done and execution proceeds (unless a
/// guardrail blocks); `enforce`: a deny stops the action, an undefined or failed decision too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    /// Observe: record what policy decided, and run the action anyway.
    Ledger,
    /// Govern: run only what policy allows; a required approval waits.
    Enforce,
}

impl PolicyMode {
    /// The mode as configuration and the ledger spell it: `ledger` or `enforce`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyMode::Ledger => "ledger",
            PolicyMode::Enforce => "enforce",
        }
    }
}

/// The decision part of a response (SPEC §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DecisionView {
    /// `allow`, `deny` or `require_approval`, after trust gates.
    pub outcome: String,
    /// The policy mode (`ledger`, `enforce`), or `guardrail` when a guardrail refused the action.
    pub mode: String,
    /// The policy that decided (its package, e.g. `docketops.policy`; `guardrails` for a guardrail).
    pub policy: String,
    /// Why, in words, as the policy or the guardrail gave them.
    pub reasons: Vec<String>,
}

/// The response of `POST /api/v1/actions` (SPEC §3, HTTP 200 for every decided action).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActionResponse {
    /// `act_…`: the action's id, in every entry it wrote.
    pub action_id: String,
    /// Where the action stands now (final, or waiting for an approval).
    pub status: ActionStatus,
    /// The risk level (`LOW`, `MEDIUM`, `HIGH`), once classified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<String>,
    /// The decision, once policy or a guardrail made one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionView>,
    /// The action's last ledger entry so far.
    pub ledger_entry_id: String,
    /// That entry's event hash (`sha256:…`).
    pub event_hash: String,
    /// That entry's chain hash, which its signature covers.
    pub chain_hash: String,
    /// Whether that entry's signature verifies with this gateway's signing key.
    pub signature_verified: bool,
    /// The ids of the action's entries so far, in ledger order.
    pub entries: Vec<String>,
    /// The receipt of `ledger_entry_id` (a C2SP tlog-proof file holding the entry, its inclusion proof and a
    /// signed, cosigned checkpoint; `docketops verify --receipt` checks it offline). A checkpoint covers the
    /// entry within about a second; `?wait=SECONDS` long-polls until one does.
    pub receipt_url: String,
    /// GET/LIST: what was read (Secrets as metadata only). PREVIEWED: the object the API server's dry run
    /// returned (Secret values redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// FAILED: what went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// The governed action pipeline: submissions, approvals, and reads of actions, each step recorded.
#[derive(Debug)]
pub struct Pipeline {
    pub(crate) parts: PipelineParts,
    /// This process as the owner of the actions it runs (tasks, heartbeats, recovery).
    pub(crate) owner: Arc<Owner>,
}

/// The entries written so far for one action.
pub(crate) struct Trail {
    pub(crate) action_id: String,
    /// The cluster the action is for, written into every entry of the action.
    pub(crate) cluster: Option<String>,
    pub(crate) entries: Vec<Entry>,
}

impl Trail {
    /// The payload with the action's cluster added (every entry of an action names its cluster).
    fn with_cluster(&self, mut payload: Value) -> Value {
        if let (Some(cluster), Some(fields)) = (&self.cluster, payload.as_object_mut()) {
            fields.entry("cluster").or_insert_with(|| json!(cluster));
        }
        payload
    }

    /// An entry of this action: bounded (see `sizes`), ledger-safe numbers, its cluster named.
    fn event(&self, actor: &str, kind: EntryKind, payload: Value) -> NewEvent {
        NewEvent::new(
            kind.as_str(),
            actor,
            sizes::fit(ledger_safe(self.with_cluster(payload))),
        )
        .with_action(self.action_id.clone())
    }
}

/// What a pipeline is made of.
#[derive(Debug)]
pub struct PipelineParts {
    /// The database: action rows, entries, trust scores.
    pub store: Store,
    /// The ledger writer every step is appended through.
    pub ledger: Ledger,
    /// For `signature_verified` in responses.
    pub signing_key: LedgerPublicKey,
    /// The governed clusters (none: actions answer 503).
    pub clusters: crate::Clusters,
    /// The policy engine that decides each action.
    pub policy: Arc<PolicyEngine>,
    /// The risk rules each action is classified by before the policy decides.
    pub risk: RiskConfig,
    /// Whether decisions are only recorded or enforced.
    pub mode: PolicyMode,
    /// Where the pipeline counts actions, decisions and risk levels.
    pub metrics: Arc<Metrics>,
    /// How long an approval may take before the action expires.
    pub approval_window: std::time::Duration,
    /// The trust scores an identity needs for allowed actions to run without an approval.
    pub trust_gates: TrustGates,
    /// Called when an action starts waiting for an approval.
    pub approval_webhook: Option<crate::ApprovalWebhook>,
    /// How long this gateway may miss heartbeats before another one recovers its unfinished actions.
    pub instance_lease: std::time::Duration,
    /// Who besides admins may freeze (`[freeze]`).
    pub freeze: FreezeSettings,
    /// Which counts of denied or failed actions suspend an agent (`[breakers]`; none by default).
    pub breakers: Breakers,
    /// Blast-radius budgets (`[budgets]`; none by default).
    pub budgets: Budgets,
}

/// The trust an identity needs for an allowed action of a risk level to run without an approval
/// (0: no gate). In enforce mode a gated action becomes `require_approval`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustGates {
    /// The score a `MEDIUM` action's requester needs.
    pub medium_min: i64,
    /// The score a `HIGH` action's requester needs.
    pub high_min: i64,
}

impl Pipeline {
    /// A pipeline of `parts`, owning the actions it runs under a fresh instance id.
    pub fn new(parts: PipelineParts) -> Self {
        Self {
            owner: Arc::new(Owner::new(parts.instance_lease)),
            parts,
        }
    }

    /// This process as the owner of the actions it runs.
    pub fn owner(&self) -> &Arc<Owner> {
        &self.owner
    }

    /// Whether decisions are only recorded or enforced.
    pub fn mode(&self) -> PolicyMode {
        self.parts.mode
    }

    /// The governed clusters.
    pub fn clusters(&self) -> &crate::Clusters {
        &self.parts.clusters
    }

    /// The identity's trust score as stored beside the ledger (one indexed lookup, whatever its history;
    /// see `ledger_core::trust` for the function and `storage`'s trust tables for how it is kept).
    pub async fn trust(&self, identity_id: &str) -> Result<storage::StoredTrust, GatewayError> {
        Ok(self.parts.store.trust_score(identity_id).await?)
    }

    /// A page of the entries that moved the identity's score, newest first, before `before_seq`.
    pub async fn trust_changes(
        &self,
        identity_id: &str,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<policy::trust::TrustChange>, GatewayError> {
        Ok(self.parts.store.trust_changes(identity_id, before_seq, limit).await?)
    }

    /// Records one entry of the action.
    pub(crate) async fn record(
        &self,
        trail: &mut Trail,
        actor: &str,
        payload: &impl Payload,
    ) -> Result<(), GatewayError> {
        let span = commit_span(&trail.action_id);
        span.record("ledger.entry_kinds", payload.kind().as_str());
        let entry = self
            .parts
            .ledger
            .append(trail.event(actor, payload.kind(), payload.to_value()))
            .instrument(span.clone())
            .await
            .inspect_err(|_| failed(&span))?;
        committed(&span, std::slice::from_ref(&entry));
        trail.entries.push(entry);
        Ok(())
    }

    /// Records `action.failed` for `stage` and returns the error report for the response.
    async fn record_failure(
        &self,
        trail: &mut Trail,
        actor: &str,
        stage: &str,
        error: &ExecError,
    ) -> Result<Value, GatewayError> {
        let failed = ActionFailed::at(stage, error.report());
        self.record(trail, actor, &failed).await?;
        Ok(json!(failed.error))
    }

    /// Appends several entries of this action in one transaction (all or none); each is a payload's
    /// [`Payload::kind_and_value`].
    pub(crate) async fn record_all(
        &self,
        trail: &mut Trail,
        actor: &str,
        events: Vec<(EntryKind, Value)>,
    ) -> Result<(), GatewayError> {
        let span = commit_span(&trail.action_id);
        let kinds: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
        span.record("ledger.entry_kinds", kinds.join(","));
        let events = events
            .into_iter()
            .map(|(kind, payload)| trail.event(actor, kind, payload))
            .collect();
        let appended = self.parts.ledger.append_all(events).instrument(span.clone()).await;
        let entries = appended.inspect_err(|_| failed(&span))?;
        committed(&span, &entries);
        trail.entries.extend(entries);
        Ok(())
    }
}

/// The span of one ledger commit of an action (one entry, or several in one transaction), for traces: the
/// entries' kinds (recorded by the caller before the commit, except where the commit decides them), ids and
/// sequence number once written. Each field is recorded once: an attribute recorded twice is exported twice.
fn commit_span(action_id: &str) -> tracing::Span {
    tracing::info_span!(
        "ledger.commit",
        action.id = action_id,
        ledger.entry_kinds = tracing::field::Empty,
        ledger.entry_ids = tracing::field::Empty,
        ledger.seq = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// Marks a commit that failed (nothing of it was written).
fn failed(span: &tracing::Span) {
    span.record("otel.status_code", "error");
}

/// Records what a commit wrote on its span: the entries' ids (comma-separated) and the last one's seq.
fn committed(span: &tracing::Span, entries: &[Entry]) {
    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    span.record("ledger.entry_ids", ids.join(","));
    if let Some(last) = entries.last() {
        // As i64: the exporter keeps integers only when they are signed (other numbers become text).
        span.record("ledger.seq", i64::try_from(last.seq).unwrap_or(i64::MAX));
    }
}

/// The span of one step of an action's pipeline (guardrails, preview, budget, policy, execute, verify, read).
macro_rules! step_span {
    ($name:literal, $action_id:expr) => {
        tracing::info_span!($name, action.id = $action_id.as_str())
    };
}
pub(crate) use step_span;

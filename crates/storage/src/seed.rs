//! Realistic history in bulk (`docketops seed-history`, and the tests that need a large ledger): identities
//! recorded the way the gateway records them, and actions with the entries the pipeline writes for them, in
//! a realistic mix of outcomes, with their `actions` and `approvals` rows.
//!
//! Every entry goes through the real appender (`Ledger::append_all`, large batches, several in flight), so
//! the result is signed, chained and verifiable, and a gateway may be serving the same database meanwhile
//! (the appender's lock serializes the writers). Rows are written once their entries are durable, as the
//! gateway does: a row is never effective before the entry that records it.

use domain::{ActionType, EntryKind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ledger_core::{Digest, Entry, NewEvent};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::seed_rows::{Chunk, Outcome, outcome_of};
use crate::{AppendError, Ledger, StorageError, Store};

/// How much history to write.
#[derive(Debug, Clone)]
pub struct SeedConfig {
    /// Actions to write, after the identities.
    pub actions: u64,
    /// Identities to create first (the requesters and approvers of the actions); at least 2.
    pub identities: u64,
    /// Actions per `append_all` (about five entries each).
    pub chunk_actions: usize,
    /// Chunks in flight at once (the appender groups them into transactions).
    pub in_flight: usize,
    /// The actor of the `identity.created` entries.
    pub actor: String,
    /// The cluster the actions name.
    pub cluster: String,
}

impl SeedConfig {
    /// `actions` actions by `actions / 10` identities (at least 2).
    pub fn new(actions: u64) -> SeedConfig {
        SeedConfig {
            actions,
            identities: (actions / 10).max(2),
            chunk_actions: 800,
            in_flight: 4,
            actor: "cli:seed-history".into(),
            cluster: "default".into(),
        }
    }
}

/// What has been written so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedProgress {
    /// Identities created, with their rows and `identity.created` entries.
    pub identities: u64,
    /// Actions written, with their rows and entries.
    pub actions: u64,
    /// Ledger entries appended.
    pub entries: u64,
}

/// What a run wrote and how long it took.
#[derive(Debug, Clone, Copy)]
pub struct SeedSummary {
    /// Everything the run wrote.
    pub written: SeedProgress,
    /// How long the run took.
    pub elapsed: Duration,
}

impl SeedSummary {
    /// Entries appended per second of the run.
    pub fn entries_per_second(&self) -> f64 {
        self.written.entries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Why a seeding run stopped; what it wrote before stays.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// Appending a chunk's entries failed.
    #[error("appending to the ledger: {0}")]
    Append(#[from] AppendError),
    /// Writing the rows of appended entries failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// [`SeedConfig::identities`] is below 2; nothing was written.
    #[error("seed-history needs at least 2 identities (a requester and an approver)")]
    TooFewIdentities,
}

/// The identities a run created: requesters (agents) and approvers (humans), by id.
#[derive(Debug, Clone, Default)]
pub(crate) struct Population {
    pub(crate) agents: Vec<String>,
    pub(crate) approvers: Vec<String>,
}

/// Shared state of one run.
struct Run<'a> {
    store: &'a Store,
    ledger: &'a Ledger,
    config: &'a SeedConfig,
    /// Makes this run's ids and names unique in a ledger seeded before.
    tag: String,
    written: [AtomicU64; 3],
    progress: &'a (dyn Fn(SeedProgress) + Sync),
}

impl Run<'_> {
    fn add(&self, identities: u64, actions: u64, entries: u64) {
        self.written[0].fetch_add(identities, Ordering::Relaxed);
        self.written[1].fetch_add(actions, Ordering::Relaxed);
        self.written[2].fetch_add(entries, Ordering::Relaxed);
        (self.progress)(self.snapshot());
    }

    fn snapshot(&self) -> SeedProgress {
        SeedProgress {
            identities: self.written[0].load(Ordering::Relaxed),
            actions: self.written[1].load(Ordering::Relaxed),
            entries: self.written[2].load(Ordering::Relaxed),
        }
    }
}

/// Appends `config.identities` identities and then `config.actions` actions to the ledger behind `store`
/// (after whatever it holds), reporting progress after each chunk.
pub async fn seed_history(
    store: &Store,
    ledger: &Ledger,
    config: &SeedConfig,
    progress: &(dyn Fn(SeedProgress) + Sync),
) -> Result<SeedSummary, SeedError> {
    if config.identities < 2 {
        return Err(SeedError::TooFewIdentities);
    }
    let started = Instant::now();
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    let run = Run {
        store,
        ledger,
        config,
        tag: format!(
            "{:016x}",
            (nanos as u64) ^ u64::from(std::process::id()).rotate_left(40)
        ),
        written: Default::default(),
        progress,
    };
    let population = seed_identities(&run).await?;
    seed_actions(&run, &population).await?;
    Ok(SeedSummary {
        written: run.snapshot(),
        elapsed: started.elapsed(),
    })
}

/// An id of this run: `<prefix>_` and 32 hex digits, like the gateway's.
pub(crate) fn seed_id(prefix: &str, tag: &str, n: u64) -> String {
    format!("{prefix}_{tag}{n:016x}")
}

/// The identities, 1,000 per append: every tenth a human approver, the others agents that submit actions.
async fn seed_identities(run: &Run<'_>) -> Result<Population, SeedError> {
    let mut population = Population::default();
    let total = run.config.identities;
    let mut next = 0;
    while next < total {
        let end = (next + 1000).min(total);
        let mut batch = crate::seed_rows::IdentityBatch::default();
        for n in next..end {
            let human = n % 10 == 1;
            let identity = batch.push(&run.tag, n, human, &run.config.actor);
            if human {
                population.approvers.push(identity);
            } else {
                population.agents.push(identity);
            }
        }
        let entries = run.ledger.append_all(batch.events(&run.config.actor)).await?;
        batch.insert(run.store, &entries).await?;
        run.add(end - next, 0, entries.len() as u64);
        next = end;
    }
    Ok(population)
}

/// The actions, `chunk_actions` per append and `in_flight` appends at once.
async fn seed_actions(run: &Run<'_>, population: &Population) -> Result<(), SeedError> {
    let chunk = run.config.chunk_actions.max(1) as u64;
    let starts = (0..run.config.actions).step_by(chunk as usize);
    let mut chunks = futures_util::stream::iter(starts)
        .map(|start| seed_chunk(run, population, start..(start + chunk).min(run.config.actions)))
        .buffer_unordered(run.config.in_flight.max(1));
    while let Some(result) = chunks.next().await {
        result?;
    }
    Ok(())
}

async fn seed_chunk(run: &Run<'_>, population: &Population, range: std::ops::Range<u64>) -> Result<(), SeedError> {
    let mut chunk = Chunk::default();
    let mut events = Vec::new();
    for n in range.clone() {
        let action = ActionPlan::new(run, population, n);
        let start = events.len();
        events.extend(action.events());
        chunk.plan(
            action.id,
            action.requester,
            action.approver,
            action.outcome,
            action.request,
            start..events.len(),
        );
    }
    let count = events.len() as u64;
    let entries: Vec<Entry> = run.ledger.append_all(events).await?;
    chunk.insert(run.store, &entries, &run.config.cluster).await?;
    run.add(0, range.end - range.start, count);
    Ok(())
}

/// One action of the history: who asked for what, and how it ended.
pub(crate) struct ActionPlan {
    pub(crate) id: String,
    pub(crate) requester: String,
    pub(crate) approver: String,
    pub(crate) outcome: Outcome,
    pub(crate) request: Value,
    cluster: String,
}

const NAMESPACES: [&str; 8] = [
    "staging",
    "production",
    "payments",
    "search",
    "web",
    "batch",
    "data",
    "edge",
];
const KINDS: [&str; 4] = ["Deployment", "StatefulSet", "ConfigMap", "Job"];

impl ActionPlan {
    fn new(run: &Run<'_>, population: &Population, n: u64) -> ActionPlan {
        let mix = spread(n);
        let requester = population.agents[(mix % population.agents.len() as u64) as usize].clone();
        let approver = population.approvers[((mix >> 20) % population.approvers.len() as u64) as usize].clone();
        let outcome = outcome_of(mix);
        let namespace = NAMESPACES[((mix >> 8) % 8) as usize];
        let kind = if outcome == Outcome::Read {
            "Deployment"
        } else {
            KINDS[((mix >> 12) % 4) as usize]
        };
        let action_type = match outcome {
            Outcome::Read => ActionType::Get.as_str(),
            _ if kind == "ConfigMap" => ActionType::Patch.as_str(),
            _ if kind == "Job" => ActionType::Delete.as_str(),
            _ => ActionType::Scale.as_str(),
        };
        let request = json!({"action_type": action_type, "namespace": namespace, "resource_kind": kind,
            "resource_name": format!("svc-{}", (mix >> 16) % 400),
            "parameters": if action_type == ActionType::Scale.as_str() { json!({"replicas": (mix >> 24) % 9 + 1}) } else { json!({}) },
            "justification": format!("ticket OPS-{}: routine change", (mix >> 28) % 100_000)});
        ActionPlan {
            id: seed_id("act", &run.tag, n),
            requester,
            approver,
            outcome,
            request,
            cluster: run.config.cluster.clone(),
        }
    }

    /// The entries the pipeline writes for this outcome, in order, with the payload shapes it uses.
    fn events(&self) -> Vec<NewEvent> {
        let request_sha256 = Digest::of(self.request.to_string().as_bytes()).to_string();
        let digest = Digest::of(format!("{}{request_sha256}", self.id).as_bytes()).to_string();
        let risk = self.outcome.risk();
        let decision = self.outcome.decision();
        let (requester, approver) = (self.requester.as_str(), self.approver.as_str());
        let mut steps: Vec<(&str, &str, Value)> = vec![
            (
                EntryKind::ActionRequested.as_str(),
                requester,
                json!({"identity": {"id": self.requester, "kind": "agent"},
                "request": self.request, "request_sha256": request_sha256,
                "justification": self.request["justification"]}),
            ),
            (
                EntryKind::RiskClassified.as_str(),
                requester,
                json!({"level": risk, "rules": [{"rule": "baseline", "message": "mutations start at MEDIUM"}]}),
            ),
            (
                EntryKind::PolicyDecided.as_str(),
                requester,
                json!({"outcome": decision, "reasons": [format!("seeded history: {decision}")],
                "mode": "enforce", "policy": "docketops.default", "revision": "seed", "engine": "rego",
                "decision_id": format!("dec_{}", &self.id[4..]), "input_sha256": digest}),
            ),
        ];
        let approval = json!({"digest": digest, "approvals_required": 1, "expires_at": self.outcome.expires_at()});
        let verdict = json!({"approver": self.approver, "comment": "looks right", "digest": digest});
        let executed = json!({"execution": {"executor_account": "docketops-executor-mutate", "api_status": 200},
            "request": {"method": ActionType::Patch.as_str()}, "diff": [{"path": "/spec/replicas", "op": "replace"}]});
        let verified = json!({"passed": self.outcome != Outcome::VerifyFailed, "checks": [{"path": "/spec/replicas", "ok": true}]});
        match self.outcome {
            Outcome::Completed | Outcome::VerifyFailed => {
                steps.extend([
                    (EntryKind::ActionExecuted.as_str(), requester, executed),
                    (EntryKind::OutcomeVerified.as_str(), requester, verified),
                ]);
            }
            Outcome::Read => steps.push((
                EntryKind::ActionExecuted.as_str(),
                requester,
                json!({"executor_account": "docketops-executor-read", "api_status": 200, "items": null}),
            )),
            Outcome::Denied => {}
            Outcome::Failed => steps.push((
                EntryKind::ActionFailed.as_str(),
                requester,
                json!({"stage": "execute", "error": {"code": "conflict", "status": 409}}),
            )),
            Outcome::Approved => steps.extend([
                (EntryKind::ApprovalRequested.as_str(), requester, approval),
                (EntryKind::ApprovalGranted.as_str(), approver, verdict),
                (EntryKind::ActionExecuted.as_str(), requester, executed),
                (EntryKind::OutcomeVerified.as_str(), requester, verified),
            ]),
            Outcome::Rejected => steps.extend([
                (EntryKind::ApprovalRequested.as_str(), requester, approval),
                (EntryKind::ApprovalDenied.as_str(), approver, verdict),
            ]),
            Outcome::Pending => steps.push((EntryKind::ApprovalRequested.as_str(), requester, approval)),
            Outcome::Expired => {
                let expired = json!({"expires_at": approval["expires_at"]});
                steps.extend([
                    (EntryKind::ApprovalRequested.as_str(), requester, approval),
                    (EntryKind::ApprovalExpired.as_str(), "system", expired),
                ]);
            }
        }
        steps
            .into_iter()
            .map(|(kind, actor, mut payload)| {
                payload["cluster"] = json!(self.cluster);
                NewEvent::new(kind, actor, payload).with_action(self.id.clone())
            })
            .collect()
    }
}

/// A well-spread 64-bit value for action `n` (splitmix64), so the mix has no pattern by index.
fn spread(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

//! The governed action pipeline (SPEC §4): each step a ledger entry, in this order —
//! `action.requested` → guardrails (`guardrail.denied` ends it) → preview (server-side dry-run) →
//! `risk.classified` → `policy.decided` → `action.executed` / `action.failed` → `outcome.verified`
//! (a dry run ends after `policy.decided` with `action.previewed`, see `dry_run`).
//! A request that is not a valid action is recorded as `action.rejected` and answered 400.
//!
//! Every Kubernetes call of an action carries `Audit-ID` = the id of its `action.requested` entry.

use std::str::FromStr;
use std::sync::Arc;

use executor::{Action, ActionRequest, CallContext, ExecError, Executor, Operation};
use ledger_core::{Digest, Entry, LedgerPublicKey, NewEvent};
use policy::{Outcome, PolicyEngine, RiskConfig, RiskContext};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use storage::{ActionFilter, ActionRow, Ledger, Store};

use crate::identity::{Caller, Role};
use crate::metrics::Metrics;
use crate::ownership::Owner;
use crate::sizes;
use crate::{GatewayError, new_id, now};

/// `ledger`: decisions are recorded as what policy would have done and execution proceeds (unless a
/// guardrail blocks); `enforce`: a deny stops the action, an undefined or failed decision too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    Ledger,
    Enforce,
}

impl PolicyMode {
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
    pub outcome: String,
    pub mode: String,
    pub policy: String,
    pub reasons: Vec<String>,
}

/// The response of `POST /api/v1/actions` (SPEC §3, HTTP 200 for every decided action).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActionResponse {
    pub action_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionView>,
    pub ledger_entry_id: String,
    pub event_hash: String,
    pub chain_hash: String,
    pub signature_verified: bool,
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
}

/// What a pipeline is made of.
#[derive(Debug)]
pub struct PipelineParts {
    pub store: Store,
    pub ledger: Ledger,
    /// For `signature_verified` in responses.
    pub signing_key: LedgerPublicKey,
    /// The governed clusters (none: actions answer 503).
    pub clusters: crate::Clusters,
    pub policy: Arc<PolicyEngine>,
    pub risk: RiskConfig,
    pub mode: PolicyMode,
    pub metrics: Arc<Metrics>,
    /// How long an approval may take before the action expires.
    pub approval_window: std::time::Duration,
    pub trust_gates: TrustGates,
    /// Called when an action starts waiting for an approval.
    pub approval_webhook: Option<crate::ApprovalWebhook>,
    /// How long this gateway may miss heartbeats before another one recovers its unfinished actions.
    pub instance_lease: std::time::Duration,
}

/// The trust an identity needs for an allowed action of a risk level to run without an approval
/// (0: no gate). In enforce mode a gated action becomes `require_approval`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustGates {
    pub medium_min: i64,
    pub high_min: i64,
}

impl Pipeline {
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

    pub fn mode(&self) -> PolicyMode {
        self.parts.mode
    }

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

    pub(crate) async fn record(
        &self,
        trail: &mut Trail,
        kind: &str,
        actor: &str,
        payload: Value,
    ) -> Result<(), GatewayError> {
        let entry = self
            .parts
            .ledger
            .append(
                NewEvent::new(kind, actor, sizes::fit(ledger_safe(trail.with_cluster(payload))))
                    .with_action(trail.action_id.clone()),
            )
            .await?;
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
        let report = json!(error.report());
        self.record(trail, "action.failed", actor, json!({"stage": stage, "error": report}))
            .await?;
        Ok(report)
    }

    /// Appends several entries of this action in one transaction (all or none).
    pub(crate) async fn record_all(
        &self,
        trail: &mut Trail,
        actor: &str,
        events: Vec<(&str, Value)>,
    ) -> Result<(), GatewayError> {
        let events = events
            .into_iter()
            .map(|(kind, payload)| {
                NewEvent::new(kind, actor, sizes::fit(ledger_safe(trail.with_cluster(payload))))
                    .with_action(trail.action_id.clone())
            })
            .collect();
        trail.entries.extend(self.parts.ledger.append_all(events).await?);
        Ok(())
    }

    /// Runs one action request through the whole pipeline. `body` is the request as sent (any JSON):
    /// a request that is not a valid action is recorded before it is refused. The pipeline runs in a task
    /// the gateway owns: if the caller stops waiting, the action still finishes and is recorded.
    pub async fn submit(self: &Arc<Self>, caller: &Caller, body: Value) -> Result<ActionResponse, GatewayError> {
        self.submit_once(caller, body, None).await
    }

    /// [`Pipeline::submit`] with the client's `Idempotency-Key`: a submission whose key this identity used
    /// before answers with that first action (waiting for it to finish) instead of running again.
    pub async fn submit_once(
        self: &Arc<Self>,
        caller: &Caller,
        body: Value,
        idempotency_key: Option<String>,
    ) -> Result<ActionResponse, GatewayError> {
        let this = self.clone();
        let caller = caller.clone();
        self.owner
            .run(async move { this.submit_here(&caller, body, idempotency_key).await })
            .await
    }

    async fn submit_here(
        &self,
        caller: &Caller,
        body: Value,
        idempotency_key: Option<String>,
    ) -> Result<ActionResponse, GatewayError> {
        caller.require(Role::Operator)?;
        if let Some(key) = &idempotency_key {
            crate::idempotency::check_key(key)?;
            if let Some(first) = self
                .parts
                .store
                .action_by_idempotency_key(&caller.identity.id, key)
                .await?
            {
                return self.replay(caller, &first, &body).await;
            }
        }
        let mut trail = Trail {
            action_id: new_id("act"),
            cluster: None,
            entries: Vec::new(),
        };
        let actor = caller.actor().to_owned();
        // The hash is of the recorded (redacted) form: a hash of Secret values would let anyone guess weak ones.
        let request_sha256 = request_sha256(&body);
        let parsed = serde_json::from_value::<ActionRequest>(body.clone())
            .map_err(|e| (String::from("body"), e.to_string()))
            .and_then(|request| {
                Action::from_request(&request)
                    .map(|action| (request, action))
                    .map_err(|e| (e.field, e.message))
            });
        // Everything an action records is bounded before any Kubernetes call: a request that cannot be
        // recorded whole is refused here (recorded, with large parts as digests), never after the change.
        let parsed = parsed.and_then(|ok| sizes::check_request(&body).map(|()| ok));
        let rejected = |field: &str, message: &str| {
            json!({"request": redact_request(&body), "request_sha256": request_sha256,
                   "field": field, "message": message, "key_id": caller.key_id})
        };
        let (request, action) = match parsed {
            Ok(ok) => ok,
            Err((field, message)) => {
                let too_large = field == sizes::TOO_LARGE;
                let field = if too_large { "body".to_owned() } else { field };
                self.record(&mut trail, "action.rejected", &actor, rejected(&field, &message))
                    .await?;
                return Err(if too_large {
                    GatewayError::TooLarge(message)
                } else {
                    GatewayError::BadRequest(format!("{field}: {message}"))
                });
            }
        };
        let executor = match self.parts.clusters.resolve(request.cluster.as_deref()) {
            Ok(executor) => executor,
            Err(Err(unavailable)) => return Err(unavailable),
            Err(Ok(message)) => {
                self.record(&mut trail, "action.rejected", &actor, rejected("cluster", &message))
                    .await?;
                return Err(GatewayError::BadRequest(format!("cluster: {message}")));
            }
        };
        trail.cluster = Some(executor.cluster().to_owned());

        let at = now();
        let mut row = ActionRow {
            id: trail.action_id.clone(),
            identity_id: caller.identity.id.clone(),
            action_type: action.action_type.as_str().into(),
            namespace: action.namespace.clone(),
            resource_kind: action.kind.as_str().into(),
            resource_name: action.name.clone(),
            status: "RUNNING".into(),
            risk: None,
            decision: None,
            created_at: at.clone(),
            updated_at: at,
            last_entry_id: None,
            request: None,
            approval_digest: None,
            approvals_required: None,
            expires_at: None,
            cluster: trail.cluster.clone(),
            owner: Some(self.owner.instance().to_owned()),
            idempotency_key: idempotency_key.clone(),
        };
        let running = self
            .owner
            .try_hold(&row.id)
            .expect("a new action id is not running yet");
        match self.parts.store.insert_action(&row).await {
            Ok(()) => {}
            // Another submission with the same key won the race; nothing of this one was recorded or sent.
            Err(storage::StorageError::Conflict(_)) if idempotency_key.is_some() => {
                drop(running);
                let key = idempotency_key.as_deref().unwrap_or_default();
                let first = self
                    .parts
                    .store
                    .action_by_idempotency_key(&caller.identity.id, key)
                    .await?;
                let first = first.ok_or_else(|| GatewayError::Conflict("idempotency key race lost".into()))?;
                return self.replay(caller, &first, &body).await;
            }
            Err(error) => return Err(error.into()),
        }
        self.record(
            &mut trail,
            "action.requested",
            &actor,
            json!({"identity": {"id": caller.identity.id, "name": caller.identity.name, "kind": caller.identity.kind},
                   "key_id": caller.key_id, "request": redact_request(&body), "request_sha256": request_sha256,
                   "justification": request.justification}),
        )
        .await?;
        let context = CallContext {
            identity: caller.identity.id.clone(),
            action_id: trail.action_id.clone(),
            audit_id: trail.entries[0].id.clone(),
        };

        let started = std::time::Instant::now();
        let response = match self
            .run(caller, &executor, &action, &request, &context, &mut trail, &mut row)
            .await
        {
            Ok(response) => response,
            Err(error) => return Err(self.interrupted(&row.id, running, error)),
        };
        self.parts.metrics.action_finished(&response.status, started.elapsed());
        row.status = response.status.clone();
        row.updated_at = now();
        row.last_entry_id = trail.entries.last().map(|e| e.id.clone());
        if let Err(error) = self.parts.store.update_action(&row).await {
            return Err(self.interrupted(&row.id, running, error.into()));
        }
        drop(running);
        Ok(response)
    }

    /// An action whose task hit an error it could not record (the database went away, an entry was
    /// refused): it stays unfinished and goes to recovery, which resolves it against the cluster and the
    /// ledger once it can write again. Never marked final without an entry that says so.
    fn interrupted(&self, action_id: &str, running: crate::ownership::Running, error: GatewayError) -> GatewayError {
        tracing::error!(action = %action_id, %error, "action interrupted; recovery will resolve it");
        drop(running);
        self.owner.wake_recovery();
        error
    }

    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        caller: &Caller,
        executor: &Executor,
        action: &Action,
        request: &ActionRequest,
        context: &CallContext,
        trail: &mut Trail,
        row: &mut ActionRow,
    ) -> Result<ActionResponse, GatewayError> {
        let actor = caller.actor();
        let scopes = &caller.identity.scopes;

        // Guardrails: final in every mode.
        if let Err(error) = executor.check(action, scopes) {
            let (rule, message) = match &error {
                ExecError::Guardrail(v) => (v.rule, v.message.clone()),
                other => ("guardrail", other.to_string()),
            };
            self.record(
                trail,
                "guardrail.denied",
                actor,
                json!({"rule": rule, "message": message}),
            )
            .await?;
            let decision = DecisionView {
                outcome: "deny".into(),
                mode: "guardrail".into(),
                policy: "guardrails".into(),
                reasons: vec![format!("{rule}: {message}")],
            };
            return self.respond(trail, "DENIED", None, Some(decision), None, None);
        }

        // Preview (mutations): the live object and the server-side dry-run, before risk and policy see it.
        // The requester's trust (one lookup) is read meanwhile.
        let previewed = async {
            match action.action_type.is_mutation() {
                true => Some(executor.preview(context, action, scopes).await),
                false => None,
            }
        };
        let (previewed, trust) = tokio::join!(previewed, self.trust(&caller.identity.id));
        let preview = match previewed {
            Some(Ok(preview)) => Some(preview),
            Some(Err(error)) => {
                let report = self.record_failure(trail, actor, "preview", &error).await?;
                return self.respond(trail, "FAILED", None, None, None, Some(report));
            }
            None => None,
        };
        // A score that misses entries (a catch-up pending: an upgrade, a rebuild) may be too high: fail closed,
        // as if nothing was earned yet, and say so in the recorded input.
        let trust = trust?;
        let (trust_score, trust_stale) = match trust.current {
            true => (trust.score, false),
            false => (0, true),
        };

        let current_replicas = preview.as_ref().and_then(|p| match action.operation {
            Operation::Scale { replicas } => Some(
                p.diff
                    .iter()
                    .find(|c| c.path == "/spec/replicas")
                    .and_then(|c| c.from.as_ref())
                    .and_then(Value::as_u64)
                    .map_or(replicas, |n| n as u32),
            ),
            _ => None,
        });
        let classification = self.parts.risk.classify(
            action,
            RiskContext {
                current_replicas,
                cluster: Some(executor.cluster().to_owned()),
            },
        );
        let risk = classification.level.as_str().to_owned();
        row.risk = Some(risk.clone());
        self.parts.metrics.risk(&risk);
        // Recorded together with the policy decision below: one commit for both (they are a pair; the
        // decision's input names the risk).
        let risk_payload = json!(classification);

        // Policy, with the identity's trust.
        let input = json!({
            "identity": {"id": caller.identity.id, "name": caller.identity.name, "kind": caller.identity.kind,
                         "roles": caller.identity.roles, "scopes": caller.identity.scopes, "trust_score": trust_score,
                         "trust_stale": trust_stale},
            "action": {"action_id": trail.action_id, "cluster": trail.cluster, "action_type": action.action_type, "namespace": action.namespace,
                       "resource_kind": action.kind, "resource_name": action.name,
                       "parameters": redact_request(&json!({"resource_kind": request.resource_kind, "parameters": request.parameters}))["parameters"],
                       "justification": request.justification},
            "risk": {"level": risk, "rules": classification.rules.iter().map(|r| r.id.clone()).collect::<Vec<_>>()},
            "preview": preview.as_ref().map(|p| json!({"diff": p.diff, "live": p.live})),
            "time": now(),
        });
        let policy_started = std::time::Instant::now();
        let decided = self.parts.policy.decide(&input).await;
        let policy_elapsed = policy_started.elapsed();
        let (outcome, reasons, mut payload) = match decided {
            Ok(decision) => {
                let mut payload = json!({"outcome": decision.outcome, "reasons": decision.reasons, "mode": self.parts.mode,
                    "policy": decision.policy, "revision": decision.revision, "decision_id": decision.decision_id,
                    "input_sha256": decision.input_sha256, "engine": decision.engine, "input": input});
                if let Some(approvals) = decision.approvals {
                    payload["approvals"] = json!(approvals);
                }
                (decision.outcome, decision.reasons, payload)
            }
            // Fail closed: an undefined or failed decision is a deny (only observed in ledger mode).
            Err(error) => {
                let reasons = vec![format!("policy evaluation failed: {error}")];
                let payload = json!({"outcome": Outcome::Deny, "reasons": reasons, "mode": self.parts.mode,
                    "policy": self.parts.policy.describe(), "error": error.to_string(),
                    "input_sha256": policy::decision::input_sha256(&input).unwrap_or_default(), "input": input});
                (Outcome::Deny, reasons, payload)
            }
        };
        // A trust gate turns an allowed action the identity has not yet earned into one that needs an approval.
        let required = match classification.level {
            policy::RiskLevel::Medium => self.parts.trust_gates.medium_min,
            policy::RiskLevel::High => self.parts.trust_gates.high_min,
            policy::RiskLevel::Low => 0,
        };
        // How many distinct approvers a held action needs: what the policy asked for, else one.
        let approvals_required = payload["approvals"].as_i64().unwrap_or(1);
        let (outcome, reasons) = if outcome == Outcome::Allow && trust_score < required {
            let reason =
                format!("trust {trust_score} is below the {required} needed for {risk} risk without an approval");
            payload["trust_gate"] = json!({"trust_score": trust_score, "required": required, "outcome": Outcome::RequireApproval,
                                           "reason": reason});
            (Outcome::RequireApproval, vec![reason])
        } else {
            (outcome, reasons)
        };
        self.parts
            .metrics
            .decision(outcome.as_str(), self.parts.mode.as_str(), policy_elapsed);
        row.decision = Some(json!(outcome.as_str()).to_string());
        let decision = DecisionView {
            outcome: outcome.as_str().into(),
            mode: self.parts.mode.as_str().into(),
            policy: payload["policy"].as_str().unwrap_or_default().into(),
            reasons: reasons.clone(),
        };
        let executes = !request.dry_run && (self.parts.mode != PolicyMode::Enforce || outcome == Outcome::Allow);
        let decided = vec![("risk.classified", risk_payload), ("policy.decided", payload)];
        // An action that goes on to execute stores its intent in the same round trip as the decision (both
        // must be durable before the change is sent; neither depends on the other).
        let owned = match preview.as_ref().filter(|_| executes) {
            Some(preview) => {
                let action_id = trail.action_id.clone();
                let (recorded, owned) = tokio::join!(
                    self.record_all(trail, actor, decided),
                    self.store_intent(&action_id, preview)
                );
                recorded?;
                owned?
            }
            None => {
                self.record_all(trail, actor, decided).await?;
                false
            }
        };
        // A dry run stops here: no approval request, no execution (see dry_run.rs).
        if request.dry_run
            && let Some(preview) = &preview
        {
            return self
                .finish_dry_run(trail, actor, preview, outcome, approvals_required, risk, decision)
                .await;
        }
        if self.parts.mode == PolicyMode::Enforce {
            match outcome {
                Outcome::Deny => return self.respond(trail, "DENIED", Some(risk), Some(decision), None, None),
                // Approvals come with their own workflow; until then the action waits here.
                Outcome::RequireApproval => {
                    let digest = preview.as_ref().map_or_else(
                        || approval_digest(executor.cluster(), action, &[], None),
                        |p| approval_digest(executor.cluster(), action, &p.diff, p.live.as_ref()),
                    );
                    let expires_at = crate::now_plus(self.parts.approval_window);
                    self.record(
                        trail,
                        "approval.requested",
                        actor,
                        json!({"digest": digest, "approvals_required": approvals_required, "expires_at": expires_at,
                               "diff": preview.as_ref().map(|p| &p.diff)}),
                    )
                    .await?;
                    if let Some(hook) = &self.parts.approval_webhook {
                        hook.send(json!({
                            "event": "approval.requested", "action_id": trail.action_id,
                            "ledger_entry_id": trail.entries.last().map(|e| e.id.clone()),
                            "requester": {"id": caller.identity.id, "name": caller.identity.name},
                            "action": {"cluster": executor.cluster(), "action_type": action.action_type, "namespace": action.namespace,
                                       "resource_kind": action.kind, "resource_name": action.name},
                            "risk": risk, "reasons": decision.reasons, "digest": digest, "expires_at": expires_at,
                            "approvals_required": approvals_required,
                            "approve": format!("/api/v1/approvals/{}/approve", trail.action_id),
                            "reject": format!("/api/v1/approvals/{}/reject", trail.action_id),
                        }));
                    }
                    row.request = Some(serde_json::to_string(request).expect("request serializes"));
                    row.approval_digest = Some(digest);
                    row.approvals_required = Some(approvals_required);
                    row.expires_at = Some(expires_at);
                    return self.respond(trail, "PENDING_APPROVAL", Some(risk), Some(decision), None, None);
                }
                Outcome::Allow => {}
            }
        }

        // Execute and verify.
        let Some(preview) = preview else {
            return match executor.read(context, action, scopes).await {
                Ok(read) => {
                    let summary = json!({"executor_account": read.executor_account, "api_status": read.api_status,
                        "items": read.items.as_ref().map(Vec::len), "secret_data_withheld": read.secret_data_withheld});
                    self.record(trail, "action.executed", actor, summary).await?;
                    let result = read.object.clone().or_else(|| read.items.clone().map(Value::Array));
                    self.respond(trail, "COMPLETED", Some(risk), Some(decision), result, None)
                }
                Err(error) => {
                    let report = self.record_failure(trail, actor, "read", &error).await?;
                    self.respond(trail, "FAILED", Some(risk), Some(decision), None, Some(report))
                }
            };
        };
        self.execute_and_verify(executor, context, &preview, owned, trail, actor, risk, decision)
            .await
    }

    /// Intent before effect: what is about to be sent, stored before it is sent, so that recovery can tell
    /// whether it took effect if this task never learns the answer. False if this gateway no longer owns
    /// the action.
    async fn store_intent(&self, action_id: &str, preview: &executor::Preview) -> Result<bool, GatewayError> {
        let intent = serde_json::to_string(preview).expect("a preview serializes");
        Ok(self
            .parts
            .store
            .record_intent(action_id, self.owner.instance(), &intent)
            .await?)
    }

    /// The change and its verification, each a ledger entry; `owned` is what [`Pipeline::store_intent`]
    /// answered. When the change's answer settles the verification (no read-back needed), both entries are
    /// one commit.
    #[allow(clippy::too_many_arguments)]
    async fn execute_and_verify(
        &self,
        executor: &Executor,
        context: &CallContext,
        preview: &executor::Preview,
        owned: bool,
        trail: &mut Trail,
        actor: &str,
        risk: String,
        decision: DecisionView,
    ) -> Result<ActionResponse, GatewayError> {
        // A gateway whose heartbeats lapsed may have lost the action to another one: it must not send.
        if !owned || !self.owner.lease_is_fresh() {
            return Err(GatewayError::Stopped(format!(
                "{}: this gateway's lease lapsed before the change was sent; nothing was sent",
                trail.action_id
            )));
        }
        match executor.execute(context, preview).await {
            Ok(execution) => {
                let executed = json!({"execution": execution, "request": preview.request, "diff": preview.diff});
                match executor.verify_from_answer(preview, &execution) {
                    Some(verification) => {
                        let events = vec![("action.executed", executed), ("outcome.verified", json!(verification))];
                        self.record_all(trail, actor, events).await?;
                        return self.verified(trail, &verification, risk, decision);
                    }
                    None => self.record(trail, "action.executed", actor, executed).await?,
                }
            }
            Err(error) => {
                let report = self.record_failure(trail, actor, "execute", &error).await?;
                // A timeout leaves the outcome unknown: look before reporting.
                if !matches!(error, ExecError::Timeout { .. }) {
                    return self.respond(trail, "FAILED", Some(risk), Some(decision), None, Some(report));
                }
            }
        }
        let verification = executor.verify(context, preview).await;
        self.record(trail, "outcome.verified", actor, json!(verification))
            .await?;
        self.verified(trail, &verification, risk, decision)
    }

    fn verified(
        &self,
        trail: &Trail,
        verification: &executor::Verification,
        risk: String,
        decision: DecisionView,
    ) -> Result<ActionResponse, GatewayError> {
        if verification.passed {
            return self.respond(trail, "COMPLETED", Some(risk), Some(decision), None, None);
        }
        let error = json!({"code": "verification_failed", "verification": verification});
        self.respond(trail, "FAILED", Some(risk), Some(decision), None, Some(error))
    }

    pub(crate) fn respond(
        &self,
        trail: &Trail,
        status: &str,
        risk: Option<String>,
        decision: Option<DecisionView>,
        result: Option<Value>,
        error: Option<Value>,
    ) -> Result<ActionResponse, GatewayError> {
        let last = trail
            .entries
            .last()
            .expect("the first entry is written before any response");
        Ok(ActionResponse {
            action_id: trail.action_id.clone(),
            status: status.into(),
            risk,
            decision,
            ledger_entry_id: last.id.clone(),
            event_hash: last.event_hash.clone(),
            chain_hash: last.chain_hash.clone(),
            signature_verified: signature_verifies(&self.parts.signing_key, last),
            entries: trail.entries.iter().map(|e| e.id.clone()).collect(),
            receipt_url: crate::transparency::receipt_url(&last.id),
            result,
            error,
        })
    }

    /// An action, its status and every ledger entry that belongs to it.
    /// With `wait`, answers as soon as the action has a final status, or when `wait` has passed (a long
    /// poll: a requester waiting for an approval and its execution needs no loop of its own).
    pub async fn get(
        &self,
        caller: &Caller,
        id: &str,
        wait: Option<std::time::Duration>,
    ) -> Result<Value, GatewayError> {
        let deadline = wait.map(|w| std::time::Instant::now() + w);
        let row = loop {
            let row = self
                .parts
                .store
                .action(id)
                .await?
                .ok_or_else(|| GatewayError::NotFound(format!("no action {id:?}")))?;
            // Auditors see every action; operators their own.
            if !caller.identity.has_role(Role::Auditor) && row.identity_id != caller.identity.id {
                return Err(GatewayError::NotFound(format!("no action {id:?}")));
            }
            let waiting = matches!(row.status.as_str(), "RUNNING" | "PENDING_APPROVAL" | "EXECUTING");
            match deadline {
                Some(deadline) if waiting && std::time::Instant::now() < deadline => {
                    // Also marks an action whose approval window passed meanwhile.
                    if !self.expire_if_due(&row).await? {
                        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    }
                }
                _ => break row,
            }
        };
        let entries = self.parts.store.entries_of_action(id).await?;
        Ok(json!({"action": action_view(&row), "entries": entries}))
    }

    pub async fn list(&self, caller: &Caller, mut filter: ActionFilter) -> Result<Value, GatewayError> {
        if !caller.identity.has_role(Role::Auditor) {
            filter.identity_id = Some(caller.identity.id.clone());
        }
        if let Some(before) = &filter.before {
            // A cursor the caller could not have been given is not found (as the action itself would not be),
            // rather than answered with an empty page.
            let visible =
                self.parts.store.action(before).await?.is_some_and(|row| {
                    caller.identity.has_role(Role::Auditor) || row.identity_id == caller.identity.id
                });
            if !visible {
                return Err(GatewayError::NotFound(format!("before: no action {before:?}")));
            }
        }
        let rows = self.parts.store.actions(&filter).await?;
        let next_before = (rows.len() == filter.limit as usize)
            .then(|| rows.last().map(|row| row.id.clone()))
            .flatten();
        Ok(json!({"actions": rows.iter().map(action_view).collect::<Vec<_>>(), "next_before": next_before}))
    }
}

/// An approver's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

impl Pipeline {
    /// Actions waiting for an approval (approvers and auditors), oldest first; expired ones are marked so.
    pub async fn pending_approvals(&self, caller: &Caller) -> Result<Value, GatewayError> {
        if !caller.identity.has_role(Role::Approver) && !caller.identity.has_role(Role::Auditor) {
            caller.require(Role::Approver)?;
        }
        let filter = ActionFilter {
            before: None,
            status: Some("PENDING_APPROVAL".into()),
            limit: 1000,
            ..ActionFilter::default()
        };
        let mut pending = Vec::new();
        for row in self.parts.store.actions(&filter).await?.into_iter().rev() {
            if self.expire_if_due(&row).await? {
                continue;
            }
            pending.push(json!({"action": action_view(&row), "digest": row.approval_digest,
                                "approvals_required": row.approvals_required, "expires_at": row.expires_at}));
        }
        Ok(json!({"approvals": pending}))
    }

    /// Marks every pending action whose window has passed EXPIRED; returns how many. The server runs this
    /// periodically, so an action expires on time even when nobody looks at it.
    pub async fn expire_due_approvals(&self) -> Result<usize, GatewayError> {
        let mut expired = 0;
        for row in self.parts.store.due_approvals(&now(), 1000).await? {
            if self.expire_if_due(&row).await? {
                expired += 1;
            }
        }
        Ok(expired)
    }

    /// Marks a pending action EXPIRED (with an `approval.expired` entry) once its window has passed.
    async fn expire_if_due(&self, row: &ActionRow) -> Result<bool, GatewayError> {
        let due = row.expires_at.as_deref().is_some_and(|at| at <= now().as_str());
        if !due
            || !self
                .parts
                .store
                .claim_action(&row.id, "PENDING_APPROVAL", "EXPIRED", &now())
                .await?
        {
            return Ok(false);
        }
        let mut trail = Trail {
            action_id: row.id.clone(),
            cluster: row.cluster.clone(),
            entries: Vec::new(),
        };
        self.record(
            &mut trail,
            "approval.expired",
            "system",
            json!({"expires_at": row.expires_at}),
        )
        .await?;
        self.parts.metrics.action_resolved("EXPIRED");
        let mut row = row.clone();
        row.status = "EXPIRED".into();
        row.request = None;
        row.updated_at = now();
        row.last_entry_id = trail.entries.last().map(|e| e.id.clone());
        self.parts.store.update_action(&row).await?;
        Ok(true)
    }

    /// Records a refused approval attempt and returns the error for the caller.
    async fn refuse(&self, trail: &mut Trail, caller: &Caller, error: GatewayError) -> GatewayError {
        let payload = json!({"approver": caller.identity.id, "reason": error.to_string()});
        match self.record(trail, "approval.refused", caller.actor(), payload).await {
            Ok(()) => error,
            Err(record_error) => record_error,
        }
    }

    /// An approver approves or rejects a pending action. Approval checks, in order: the approver role, the
    /// action is pending and not expired, the approver is not the requester nor anyone the requester could act
    /// as (`duties`), has not decided already, and the action and its target are still what was previewed
    /// (else a fresh approval is requested). Once enough approvals name the current digest, exactly one
    /// gateway replica executes the action, in a task of the gateway (a caller that hangs up stops nothing).
    pub async fn decide_approval(
        self: &Arc<Self>,
        caller: &Caller,
        action_id: &str,
        verdict: Verdict,
        comment: Option<String>,
        digest_named: Option<String>,
    ) -> Result<ActionResponse, GatewayError> {
        let (this, caller, action_id) = (self.clone(), caller.clone(), action_id.to_owned());
        self.owner
            .run(async move {
                this.decide_approval_here(&caller, &action_id, verdict, comment, digest_named)
                    .await
            })
            .await
    }

    async fn decide_approval_here(
        &self,
        caller: &Caller,
        action_id: &str,
        verdict: Verdict,
        comment: Option<String>,
        digest_named: Option<String>,
    ) -> Result<ActionResponse, GatewayError> {
        let not_approver = !caller.identity.has_role(Role::Approver);
        let row = match self.parts.store.action(action_id).await? {
            Some(row) => row,
            None if not_approver => {
                return Err(GatewayError::Forbidden(format!(
                    "{} is not an approver",
                    caller.identity.name
                )));
            }
            None => return Err(GatewayError::NotFound(format!("no action {action_id:?}"))),
        };
        let mut trail = Trail {
            action_id: row.id.clone(),
            cluster: row.cluster.clone(),
            entries: self.parts.store.entries_of_action(&row.id).await?,
        };
        if not_approver {
            let error = GatewayError::Forbidden(format!("{} is not an approver", caller.identity.name));
            return Err(self.refuse(&mut trail, caller, error).await);
        }
        if self.expire_if_due(&row).await? {
            let error = GatewayError::Conflict(format!("the approval window of {action_id} has passed; it is EXPIRED"));
            return Err(self.refuse(&mut trail, caller, error).await);
        }
        if row.status != "PENDING_APPROVAL" {
            let error = GatewayError::Conflict(format!("{action_id} is {}, not waiting for an approval", row.status));
            return Err(self.refuse(&mut trail, caller, error).await);
        }
        if row.identity_id == caller.identity.id {
            let error = GatewayError::Forbidden("an identity cannot approve or reject its own action".into());
            return Err(self.refuse(&mut trail, caller, error).await);
        }
        // Separation of duties (crate::duties): the requester must not be able to act as this approver.
        if let Some(why) = crate::duties::could_act_as(&self.parts.store, &row.identity_id, &caller.identity.id).await?
        {
            let error = GatewayError::Forbidden(format!(
                "separation of duties: {} cannot decide on {action_id}, its requester could act as it: {why}",
                caller.identity.name
            ));
            return Err(self.refuse(&mut trail, caller, error).await);
        }
        let digest = row.approval_digest.clone().unwrap_or_default();
        if self
            .parts
            .store
            .approvals_of(&row.id, &digest)
            .await?
            .iter()
            .any(|a| a.approver_id == caller.identity.id)
        {
            let error = GatewayError::Conflict(format!("{} has already decided on {action_id}", caller.identity.name));
            return Err(self.refuse(&mut trail, caller, error).await);
        }

        if verdict == Verdict::Reject {
            if !self
                .parts
                .store
                .claim_action(&row.id, "PENDING_APPROVAL", "REJECTED", &now())
                .await?
            {
                return Err(GatewayError::Conflict(format!(
                    "{action_id} is no longer waiting for an approval"
                )));
            }
            self.record(
                &mut trail,
                "approval.denied",
                caller.actor(),
                json!({"approver": caller.identity.id, "comment": comment, "digest": digest}),
            )
            .await?;
            self.finish(&row, "REJECTED", &trail).await?;
            return self.respond(&trail, "REJECTED", row.risk.clone(), None, None, None);
        }

        // The action and its target must still be what was previewed when the approval was requested.
        let executor = match self.parts.clusters.resolve(row.cluster.as_deref()) {
            Ok(executor) => executor,
            Err(Err(unavailable)) => return Err(unavailable),
            Err(Ok(message)) => {
                let error = GatewayError::Conflict(format!("{action_id} cannot run here: {message}"));
                return Err(self.refuse(&mut trail, caller, error).await);
            }
        };
        let request: ActionRequest = serde_json::from_str(row.request.as_deref().unwrap_or("null")).map_err(|e| {
            GatewayError::Conflict(format!("{action_id} cannot be executed: its request is gone ({e})"))
        })?;
        let action = Action::from_request(&request).map_err(|e| GatewayError::BadRequest(e.to_string()))?;
        let requester = crate::Directory::new(self.parts.store.clone(), self.parts.ledger.clone())
            .get(&row.identity_id)
            .await?;
        if requester.status != crate::Status::Active {
            let error = GatewayError::Conflict(format!(
                "the requester {} is {}; its actions no longer run",
                requester.name,
                requester.status.as_str()
            ));
            return Err(self.refuse(&mut trail, caller, error).await);
        }
        let context = CallContext {
            identity: requester.id.clone(),
            action_id: row.id.clone(),
            audit_id: trail.entries.first().map(|e| e.id.clone()).unwrap_or_default(),
        };
        let preview = match executor.preview(&context, &action, &requester.scopes).await {
            Ok(preview) => preview,
            Err(error) => {
                let error = GatewayError::Conflict(format!("the target cannot be previewed again: {error}"));
                return Err(self.refuse(&mut trail, caller, error).await);
            }
        };
        let current = approval_digest(executor.cluster(), &action, &preview.diff, preview.live.as_ref());
        if current != digest {
            let expires_at = crate::now_plus(self.parts.approval_window);
            // Only while the action is still pending with the old digest (another gateway may have moved on).
            if !self
                .parts
                .store
                .renew_approval_request(&row.id, &digest, &current, &expires_at, &now())
                .await?
            {
                return Err(GatewayError::Conflict(format!(
                    "{action_id} is no longer waiting for this approval"
                )));
            }
            let error = GatewayError::Conflict(format!(
                "{action_id} or its target changed since the approval was requested; a fresh approval is requested"
            ));
            let error = self.refuse(&mut trail, caller, error).await;
            self.record(
                &mut trail,
                "approval.requested",
                "system",
                json!({"digest": current, "approvals_required": row.approvals_required, "expires_at": expires_at,
                       "diff": preview.diff, "replaces": digest}),
            )
            .await?;
            return Err(error);
        }
        if let Some(named) = digest_named.as_deref()
            && named != digest
        {
            let error = GatewayError::Conflict(format!(
                "the approval names digest {named}, but {action_id} now waits for an approval of {digest}"
            ));
            return Err(self.refuse(&mut trail, caller, error).await);
        }

        self.parts
            .store
            .insert_approval(&storage::ApprovalRow {
                action_id: row.id.clone(),
                approver_id: caller.identity.id.clone(),
                decision: "approve".into(),
                digest: digest.clone(),
                created_at: now(),
                entry_id: None,
            })
            .await
            .map_err(|e| match e {
                storage::StorageError::Conflict(message) => GatewayError::Conflict(message),
                other => other.into(),
            })?;
        let granted = self.parts.store.approvals_of(&row.id, &digest).await?.len() as i64;
        let required = row.approvals_required.unwrap_or(1);
        let recorded = self
            .record(
                &mut trail,
                "approval.granted",
                caller.actor(),
                json!({"approver": caller.identity.id, "comment": comment, "digest": digest,
                       "approvals": granted, "approvals_required": required}),
            )
            .await;
        if let Err(error) = recorded {
            // No entry, no approval: take the row back so the approver can try again.
            if let Err(remove) = self
                .parts
                .store
                .remove_approval(&row.id, &caller.identity.id, &digest)
                .await
            {
                tracing::error!(action = %row.id, %remove, "could not take back an unrecorded approval");
            }
            return Err(error);
        }
        let risk = row.risk.clone().unwrap_or_default();
        let decision = DecisionView {
            outcome: "require_approval".into(),
            mode: self.parts.mode.as_str().into(),
            policy: String::new(),
            reasons: vec![format!(
                "approved by {} ({granted} of {required} approvals)",
                caller.identity.name
            )],
        };
        if granted < required {
            return self.respond(&trail, "PENDING_APPROVAL", Some(risk), Some(decision), None, None);
        }
        // Exactly once, whatever the number of gateways: only the one that moves the status executes.
        // (A task of this process may already hold it: then it is executing here.)
        let running = self.hold_soon(&row.id).await;
        let claimed = match running {
            Some(_) => {
                self.parts
                    .store
                    .claim_for_execution(&row.id, &now(), self.owner.instance())
                    .await?
            }
            None => false,
        };
        let (true, Some(running)) = (claimed, running) else {
            let current = self
                .parts
                .store
                .action(&row.id)
                .await?
                .map(|r| r.status)
                .unwrap_or_default();
            return self.respond(&trail, &current, Some(risk), Some(decision), None, None);
        };
        let owned = match self.store_intent(&row.id, &preview).await {
            Ok(owned) => owned,
            Err(error) => return Err(self.interrupted(&row.id, running, error)),
        };
        let executed = self
            .execute_and_verify(
                &executor,
                &context,
                &preview,
                owned,
                &mut trail,
                caller.actor(),
                risk,
                decision,
            )
            .await;
        let response = match executed {
            Ok(response) => response,
            Err(error) => return Err(self.interrupted(&row.id, running, error)),
        };
        if let Err(error) = self.finish(&row, &response.status, &trail).await {
            return Err(self.interrupted(&row.id, running, error));
        }
        drop(running);
        Ok(response)
    }

    /// Holds the action as running here; the submitting task may still hold it for a moment after it
    /// stored PENDING_APPROVAL. `None` if it stays held (then it is being executed here).
    async fn hold_soon(&self, action_id: &str) -> Option<crate::ownership::Running> {
        for _ in 0..50 {
            if let Some(running) = self.owner.try_hold(action_id) {
                return Some(running);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        None
    }

    /// The final status of an action that waited, and its request forgotten.
    pub(crate) async fn finish(&self, row: &ActionRow, status: &str, trail: &Trail) -> Result<(), GatewayError> {
        self.parts.metrics.action_resolved(status);
        let mut row = row.clone();
        row.status = status.into();
        row.request = None;
        row.updated_at = now();
        row.last_entry_id = trail.entries.last().map(|e| e.id.clone());
        self.parts.store.update_action(&row).await?;
        Ok(())
    }
}

fn action_view(row: &ActionRow) -> Value {
    json!({"action_id": row.id, "cluster": row.cluster, "identity_id": row.identity_id, "action_type": row.action_type,
           "namespace": row.namespace, "resource_kind": row.resource_kind, "resource_name": row.resource_name,
           "status": row.status, "risk": row.risk,
           "decision": row.decision.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()),
           "created_at": row.created_at, "updated_at": row.updated_at, "last_entry_id": row.last_entry_id})
}

/// What an approval approves: the cluster, the exact action and the preview (diff and the live object's identity), as
/// `sha256:<hex>` of its JSON (serde_json sorts object keys, so the text is deterministic).
fn approval_digest(
    cluster: &str,
    action: &Action,
    diff: &[executor::diff::Change],
    live: Option<&executor::executor::LiveObject>,
) -> String {
    let document = json!({"cluster": cluster, "action": action, "diff": diff, "live": live});
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(document.to_string().as_bytes()))
    )
}

/// `sha256:<hex>` of the request as recorded (redacted).
pub(crate) fn request_sha256(body: &Value) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(redact_request(body).to_string().as_bytes()))
    )
}

/// The entry's signature checked against the gateway's public key, now.
fn signature_verifies(key: &LedgerPublicKey, entry: &Entry) -> bool {
    let Ok(chain_hash) = Digest::from_str(&entry.chain_hash) else {
        return false;
    };
    let Some(signature) = ledger_core::keys::signature_from_hex(&entry.signature) else {
        return false;
    };
    key.verify(&chain_hash, &signature)
}

/// The request as recorded: Secret values redacted (whatever else is wrong with the request).
///
/// A valid request for a Secret has its patch or manifest redacted. Anything else that could carry Secret
/// values (another spelling of the kind, an APPLY whose manifest says `kind: Secret`, a malformed request) has
/// every `data`/`stringData` object anywhere in its parameters redacted; ConfigMap data stays readable only in
/// requests that are valid and name another kind.
pub(crate) fn redact_request(body: &Value) -> Value {
    let mut body = body.clone();
    let kind = body
        .get("resource_kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let valid_non_secret = executor::ResourceKind::parse(&kind).is_some_and(|k| k != executor::ResourceKind::Secret)
        && !body.to_string().to_ascii_lowercase().contains("\"kind\":\"secret\"");
    if let Some(parameters) = body.get_mut("parameters") {
        if kind == "Secret" {
            for key in ["patch", "manifest"] {
                if let Some(value) = parameters.get_mut(key) {
                    executor::diff::redact_secret(value);
                }
            }
        }
        if !valid_non_secret {
            redact_data_everywhere(parameters);
        }
    }
    body
}

/// Replaces the values of every `data` and `stringData` object inside `value` by `"<redacted>"`.
fn redact_data_everywhere(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if (key == "data" || key == "stringData") && child.is_object() {
                    if let Some(values) = child.as_object_mut() {
                        for v in values.values_mut() {
                            *v = Value::String(executor::diff::REDACTED.into());
                        }
                    }
                } else {
                    redact_data_everywhere(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_data_everywhere),
        // A string may hold a whole JSON document (parameters sent as text): keep nothing of it.
        Value::String(text) if text.contains("data") => *text = executor::diff::REDACTED.into(),
        _ => {}
    }
}

/// The ledger keeps integers within ±(2^53−1) and no floats (SPEC §5): anything else a caller sent is
/// recorded as its JSON text, so even a malformed request can be recorded.
pub(crate) fn ledger_safe(value: Value) -> Value {
    const MAX_SAFE: u64 = ledger_core::json::MAX_SAFE_INTEGER as u64;
    match value {
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) if i.unsigned_abs() <= MAX_SAFE => Value::Number(n),
            (_, Some(u)) if u <= MAX_SAFE => Value::Number(n),
            _ => Value::String(n.to_string()),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(ledger_safe).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, ledger_safe(v))).collect::<Map<_, _>>()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_numbers_are_recorded_as_text() {
        let value = json!({"a": 1.5, "b": [9007199254740993u64, -3], "c": {"d": 9007199254740991u64}});
        assert_eq!(
            ledger_safe(value),
            json!({"a": "1.5", "b": ["9007199254740993", -3], "c": {"d": 9007199254740991u64}})
        );
    }

    #[test]
    fn secret_values_are_redacted_however_the_request_is_wrong() {
        for body in [
            json!({"resource_kind": "secret", "parameters": {"patch": {"data": {"k": "c2VjcmV0"}}}}),
            json!({"resource_kind": "ConfigMap", "parameters": {"manifest": {"kind": "Secret", "data": {"k": "c2VjcmV0"}}}}),
            json!({"resource_kind": "Secret", "parameters": {"data": {"k": "c2VjcmV0"}}}),
            json!({"resource_kind": "Secret", "parameters": "{\"data\": {\"k\": \"c2VjcmV0\"}}"}),
            json!({"resource_kind": "Sekret", "parameters": {"x": [{"stringData": {"k": "c2VjcmV0"}}]}}),
        ] {
            assert!(!redact_request(&body).to_string().contains("c2VjcmV0"), "{body}");
        }
    }

    #[test]
    fn secret_requests_are_redacted() {
        let body = json!({"resource_kind": "Secret", "parameters": {"patch": {"data": {"k": "c2VjcmV0"}}}});
        assert!(!redact_request(&body).to_string().contains("c2VjcmV0"));
        let other = json!({"resource_kind": "ConfigMap", "parameters": {"patch": {"data": {"k": "v"}}}});
        assert_eq!(redact_request(&other), other);
    }
}

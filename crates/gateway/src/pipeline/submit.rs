//! Submitting an action: record the request, then guardrails, preview, risk, policy, execution and
//! verification, each step a ledger entry.

use super::decision::Decided;
use super::*;
use domain::FreezeTarget;
use domain::payload::{self, ActionRejected, ActionRequested, ReadExecuted, Requester};
use domain::{ActionStatus, EntryKind};

impl Pipeline {
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
        // The action's span, a child of the caller's request (and through it of the caller's trace): its id
        // recorded once made, its status once answered, inside the task (a caller that hangs up stops nothing
        // of it). Each field is recorded once: an attribute recorded twice is exported twice.
        let span = tracing::info_span!(
            "action",
            action.id = tracing::field::Empty,
            action.type = tracing::field::Empty,
            action.status = tracing::field::Empty,
            action.replays = tracing::field::Empty,
            identity.id = caller.identity.id.as_str(),
            otel.status_code = tracing::field::Empty,
        );
        let submitted = async move {
            let answer = this.submit_here(&caller, body, idempotency_key).await;
            record_answer(&tracing::Span::current(), &answer);
            answer
        };
        self.owner.run(submitted.instrument(span)).await
    }

    pub(super) async fn submit_here(
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
                tracing::Span::current().record("action.id", first.id.as_str());
                return self.replay(caller, &first, &body).await;
            }
        }
        let mut trail = Trail {
            action_id: new_id("act"),
            cluster: None,
            entries: Vec::new(),
        };
        tracing::Span::current().record("action.id", trail.action_id.as_str());
        let actor = caller.actor().to_owned();
        // The hash is of the recorded (redacted) form: a hash of Secret values would let anyone guess weak ones.
        let request_sha256 = request_sha256(&body);
        let (request, action, executor) = self.accept(caller, &body, &request_sha256, &mut trail).await?;
        trail.cluster = Some(executor.name().to_owned());
        tracing::Span::current().record("action.type", action.action_type.as_str());

        let mut row = self.new_row(caller, &trail, &action, idempotency_key.clone());
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
                // This submission's own id is on the span already: name the first action beside it.
                tracing::Span::current().record("action.replays", first.id.as_str());
                return self.replay(caller, &first, &body).await;
            }
            Err(error) => return Err(error.into()),
        }
        let requested = ActionRequested {
            identity: Requester {
                id: caller.identity.id.clone(),
                name: caller.identity.name.clone(),
                kind: caller.identity.kind,
            },
            key_id: caller.key_id.clone(),
            request: redact_request(&body),
            request_sha256: request_sha256.clone(),
            justification: request.justification.clone(),
        };
        self.record(&mut trail, &actor, &requested).await?;
        let context = CallContext {
            identity: caller.identity.id.clone(),
            action_id: trail.action_id.clone(),
            audit_id: trail.entries[0].id.clone(),
        };

        let started = std::time::Instant::now();
        let response = match self
            .run(caller, &*executor, &action, &request, &context, &mut trail, &mut row)
            .await
        {
            Ok(response) => response,
            Err(error) => return Err(self.interrupted(&row.id, running, error)),
        };
        self.parts
            .metrics
            .action_finished(response.status.as_str(), started.elapsed());
        row.status = response.status;
        row.updated_at = now();
        row.last_entry_id = trail.entries.last().map(|e| e.id.clone());
        if let Err(error) = self.parts.store.update_action(&row).await {
            return Err(self.interrupted(&row.id, running, error.into()));
        }
        drop(running);
        if let Err(error) = self.check_breakers(caller, response.status).await {
            tracing::warn!(action = %row.id, %error, "circuit breakers could not be checked");
        }
        Ok(response)
    }

    /// The request as a valid action on a configured cluster; anything else is recorded as
    /// `action.rejected` and refused (400, or 413 for a request too large to record whole).
    async fn accept(
        &self,
        caller: &Caller,
        body: &Value,
        request_sha256: &str,
        trail: &mut Trail,
    ) -> Result<(ActionRequest, Action, Arc<dyn Cluster>), GatewayError> {
        let actor = caller.actor();
        let parsed = serde_json::from_value::<ActionRequest>(body.clone())
            .map_err(|e| (String::from("body"), e.to_string()))
            .and_then(|request| {
                Action::from_request(&request)
                    .map(|action| (request, action))
                    .map_err(|e| (e.field, e.message))
            });
        // Everything an action records is bounded before any Kubernetes call: a request that cannot be
        // recorded whole is refused here (recorded, with large parts as digests), never after the change.
        let parsed = parsed.and_then(|ok| sizes::check_request(body).map(|()| ok));
        let rejected = |field: &str, message: &str| ActionRejected {
            request: redact_request(body),
            request_sha256: request_sha256.to_owned(),
            field: field.to_owned(),
            message: message.to_owned(),
            key_id: caller.key_id.clone(),
        };
        let (request, action) = match parsed {
            Ok(ok) => ok,
            Err((field, message)) => {
                let too_large = field == sizes::TOO_LARGE;
                let field = if too_large { "body".to_owned() } else { field };
                self.record(trail, actor, &rejected(&field, &message)).await?;
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
                self.record(trail, actor, &rejected("cluster", &message)).await?;
                return Err(GatewayError::BadRequest(format!("cluster: {message}")));
            }
        };
        Ok((request, action, executor))
    }

    /// The action's row as it starts: RUNNING, owned by this gateway.
    fn new_row(&self, caller: &Caller, trail: &Trail, action: &Action, idempotency_key: Option<String>) -> ActionRow {
        let at = now();
        ActionRow {
            id: trail.action_id.clone(),
            identity_id: caller.identity.id.clone(),
            action_type: action.action_type.as_str().into(),
            namespace: action.namespace.clone(),
            resource_kind: action.kind.as_str().into(),
            resource_name: action.name.clone(),
            status: ActionStatus::Running,
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
            idempotency_key,
            approval_groups: None,
        }
    }

    /// An action whose task hit an error it could not record (the database went away, an entry was
    /// refused): it stays unfinished and goes to recovery, which resolves it against the cluster and the
    /// ledger once it can write again. Never marked final without an entry that says so.
    pub(super) fn interrupted(
        &self,
        action_id: &str,
        running: crate::ownership::Running,
        error: GatewayError,
    ) -> GatewayError {
        tracing::error!(action = %action_id, %error, "action interrupted; recovery will resolve it");
        drop(running);
        self.owner.wake_recovery();
        error
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run(
        &self,
        caller: &Caller,
        executor: &dyn Cluster,
        action: &Action,
        request: &ActionRequest,
        context: &CallContext,
        trail: &mut Trail,
        row: &mut ActionRow,
    ) -> Result<ActionResponse, GatewayError> {
        let actor = caller.actor();
        let scopes = &caller.identity.scopes;

        // Guardrails and freezes: final in every mode.
        if let Some(refused) = self.refuse_early(caller, executor, action, trail).await? {
            return Ok(refused);
        }

        // Preview (mutations): the live object and the server-side dry-run, before risk and policy see it.
        // The requester's trust (one lookup) is read meanwhile.
        let (previewed, trust) = self.preview_and_trust(caller, executor, action, context, trail).await;
        let preview = match previewed {
            Some(Ok(preview)) => Some(preview),
            Some(Err(error)) => {
                let report = self.record_failure(trail, actor, "preview", &error).await?;
                return self.respond(trail, ActionStatus::Failed, None, None, None, Some(report));
            }
            None => None,
        };
        // Budgets: planned after the preview (which gives the replica change), reserved with the decision's
        // entries, which a refusal replaces (decision.rs): final in every mode, and recorded as if before policy.
        // A dry run spends nothing.
        let spends = preview.as_ref().filter(|_| !request.dry_run);
        let budget = match self.plan_budget(caller, executor, action, spends, trail).await? {
            Ok(budget) => budget,
            Err(failed) => return Ok(failed),
        };
        let judged = self
            .judge(caller, executor, action, request, trail, preview.as_ref(), trust?)
            .await?;
        let Judged {
            outcome,
            required,
            risk,
            decision,
            recorded,
        } = judged;
        let executes = !request.dry_run && (self.parts.mode != PolicyMode::Enforce || outcome == Outcome::Allow);
        let to_execute = preview.as_ref().filter(|_| executes);
        let owned = match self.record_decision(trail, actor, recorded, to_execute, budget).await? {
            Decided::Recorded { owned } => owned,
            Decided::Refused(refused) => return Ok(*refused),
        };
        row.risk = Some(risk.clone());
        row.decision = Some(json!(outcome.as_str()).to_string());
        // A dry run stops here: no approval request, no execution (see dry_run.rs).
        if request.dry_run
            && let Some(preview) = &preview
        {
            return self
                .finish_dry_run(trail, actor, preview, outcome, required.approvals, risk, decision)
                .await;
        }
        if self.parts.mode == PolicyMode::Enforce {
            match outcome {
                Outcome::Deny => {
                    let status = ActionStatus::Denied;
                    return self.respond(trail, status, Some(risk), Some(decision), None, None);
                }
                // Approvals come with their own workflow; until then the action waits here.
                Outcome::RequireApproval => {
                    let held = Held {
                        caller,
                        executor,
                        action,
                        request,
                        preview: preview.as_ref(),
                        required,
                    };
                    return self.hold_for_approval(held, trail, row, risk, decision).await;
                }
                Outcome::Allow => {}
            }
        }

        // Execute and verify.
        let Some(preview) = preview else {
            return self
                .read_and_respond(executor, context, action, scopes, trail, actor, risk, decision)
                .await;
        };
        self.execute_and_verify(executor, context, &preview, owned, trail, actor, risk, decision)
            .await
    }

    /// The preview of a mutation (the live object and the server-side dry run; none for a read), and the
    /// requester's trust, read meanwhile.
    async fn preview_and_trust(
        &self,
        caller: &Caller,
        executor: &dyn Cluster,
        action: &Action,
        context: &CallContext,
        trail: &Trail,
    ) -> (
        Option<Result<executor::Preview, ExecError>>,
        Result<storage::StoredTrust, GatewayError>,
    ) {
        let previewed = async {
            match action.action_type.is_mutation() {
                true => {
                    let preview = executor.preview(context, action, &caller.identity.scopes);
                    Some(preview.instrument(step_span!("preview", trail.action_id)).await)
                }
                false => None,
            }
        };
        tokio::join!(previewed, self.trust(&caller.identity.id))
    }

    /// The refusals that come before anything is previewed or decided, final in every mode: a guardrail,
    /// then (mutations only) a freeze.
    #[tracing::instrument(name = "guardrails", skip_all, fields(action.id = trail.action_id.as_str()))]
    async fn refuse_early(
        &self,
        caller: &Caller,
        executor: &dyn Cluster,
        action: &Action,
        trail: &mut Trail,
    ) -> Result<Option<ActionResponse>, GatewayError> {
        let actor = caller.actor();
        if let Err(error) = executor.check(action, &caller.identity.scopes) {
            return self.deny_by_guardrail(trail, actor, &error).await.map(Some);
        }
        if !action.action_type.is_mutation() {
            return Ok(None);
        }
        let target = FreezeTarget {
            cluster: executor.name(),
            namespace: action.namespace.as_deref(),
            identity_id: &caller.identity.id,
            identity_kind: caller.identity.kind,
        };
        match self.freeze_covering(&target).await? {
            Some(freeze) => self.deny_by_freeze(trail, actor, &freeze, "submit").await.map(Some),
            None => Ok(None),
        }
    }

    /// A guardrail's refusal, recorded and answered (final in every policy mode).
    async fn deny_by_guardrail(
        &self,
        trail: &mut Trail,
        actor: &str,
        error: &ExecError,
    ) -> Result<ActionResponse, GatewayError> {
        let (rule, message) = match error {
            ExecError::Guardrail(v) => (v.rule, v.message.clone()),
            other => ("guardrail", other.to_string()),
        };
        let denied = payload::GuardrailDenied {
            rule: rule.to_owned(),
            message: message.clone(),
        };
        self.record(trail, actor, &denied).await?;
        let decision = DecisionView {
            outcome: "deny".into(),
            mode: "guardrail".into(),
            policy: "guardrails".into(),
            reasons: vec![format!("{rule}: {message}")],
        };
        self.respond(trail, ActionStatus::Denied, None, Some(decision), None, None)
    }

    /// A read: executed at once (nothing to preview or hold), recorded and answered.
    #[allow(clippy::too_many_arguments)]
    async fn read_and_respond(
        &self,
        executor: &dyn Cluster,
        context: &CallContext,
        action: &Action,
        scopes: &[executor::Scope],
        trail: &mut Trail,
        actor: &str,
        risk: String,
        decision: DecisionView,
    ) -> Result<ActionResponse, GatewayError> {
        let read = executor
            .read(context, action, scopes)
            .instrument(step_span!("read", trail.action_id));
        match read.await {
            Ok(read) => {
                let summary = ReadExecuted {
                    executor_account: read.executor_account.clone(),
                    api_status: read.api_status,
                    items: read.items.as_ref().map(Vec::len),
                    secret_data_withheld: read.secret_data_withheld,
                };
                self.record(trail, actor, &summary).await?;
                let result = read.object.clone().or_else(|| read.items.clone().map(Value::Array));
                self.respond(trail, ActionStatus::Completed, Some(risk), Some(decision), result, None)
            }
            Err(error) => {
                let report = self.record_failure(trail, actor, "read", &error).await?;
                self.respond(
                    trail,
                    ActionStatus::Failed,
                    Some(risk),
                    Some(decision),
                    None,
                    Some(report),
                )
            }
        }
    }

    /// Records the approval request, tells the approvers, and answers PENDING_APPROVAL.
    async fn hold_for_approval(
        &self,
        held: Held<'_>,
        trail: &mut Trail,
        row: &mut ActionRow,
        risk: String,
        decision: DecisionView,
    ) -> Result<ActionResponse, GatewayError> {
        let Held {
            caller,
            executor,
            action,
            request,
            preview,
            required,
        } = held;
        let actor = caller.actor();
        let digest = preview.as_ref().map_or_else(
            || approval_digest(executor.name(), action, &[], None),
            |p| approval_digest(executor.name(), action, &p.diff, p.live.as_ref()),
        );
        let expires_at = crate::now_plus(self.parts.approval_window);
        self.record(
            trail,
            actor,
            &payload::ApprovalRequested {
                digest: digest.clone(),
                approvals_required: Some(required.approvals),
                approval_groups: required.groups.clone(),
                expires_at: expires_at.clone(),
                diff: json!(preview.as_ref().map(|p| &p.diff)),
                replaces: None,
            },
        )
        .await?;
        if let Some(hook) = &self.parts.approval_webhook {
            hook.send(json!({
                "event": EntryKind::ApprovalRequested.as_str(), "action_id": trail.action_id,
                "ledger_entry_id": trail.entries.last().map(|e| e.id.clone()),
                "requester": {"id": caller.identity.id, "name": caller.identity.name},
                "action": {"cluster": executor.name(), "action_type": action.action_type, "namespace": action.namespace,
                           "resource_kind": action.kind, "resource_name": action.name},
                "risk": risk, "reasons": decision.reasons, "digest": digest, "expires_at": expires_at,
                "approvals_required": required.approvals, "approval_groups": required.groups,
                "approve": format!("/api/v1/approvals/{}/approve", trail.action_id),
                "reject": format!("/api/v1/approvals/{}/reject", trail.action_id),
            }));
        }
        row.request = Some(serde_json::to_string(request).expect("request serializes"));
        row.approval_digest = Some(digest);
        row.approvals_required = Some(required.approvals);
        row.approval_groups = (!required.groups.is_empty()).then(|| json!(required.groups).to_string());
        row.expires_at = Some(expires_at);
        let status = ActionStatus::PendingApproval;
        self.respond(trail, status, Some(risk), Some(decision), None, None)
    }
}

/// Records what the caller is answered on the action's span: its status; an error status for a FAILED action
/// or an error the gateway itself could not help (storage, the ledger, a lapsed lease).
fn record_answer(span: &tracing::Span, answer: &Result<ActionResponse, GatewayError>) {
    let failed = match answer {
        Ok(response) => {
            span.record("action.status", response.status.as_str());
            response.status == ActionStatus::Failed
        }
        Err(error) => matches!(
            error,
            GatewayError::Storage(_) | GatewayError::Ledger(_) | GatewayError::Stopped(_)
        ),
    };
    if failed {
        span.record("otel.status_code", "error");
    }
}

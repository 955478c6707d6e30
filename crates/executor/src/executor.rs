//! The executor: guardrails first, then Kubernetes calls as an impersonated least-privilege account.
//!
//! A read is one call. A mutation is three steps the gateway records separately:
//! 1. [`Executor::preview`] checks the guardrails, reads the live object and sends the exact request with
//!    server-side dry-run; the diff between live and dry-run object is what approvers see.
//! 2. [`Executor::execute`] sends that same request for real, with the previewed `resourceVersion` (or
//!    uid and resourceVersion for DELETE) as a precondition: if the object changed since the preview the
//!    API server answers 409 and nothing is changed.
//! 3. [`Executor::verify`] reads the object back and compares it with the intended state, waiting for the
//!    rollout where that means something.

use std::time::{Duration, Instant};

use kube::api::{GetParams, ListParams};
use serde::Serialize;
use serde_json::{Value, json};

use crate::action::{Access, Action, ActionType, Operation, ResourceKind};
use crate::diff::{self, Change};
use crate::error::{ErrorReport, ExecError};
use crate::guardrails::{Guardrails, Scope};
use crate::kube::{Answer, CallContext, KubeConnection, ResourcePath};
use crate::plan::{self, Basis, PatchBody, Plan, PlannedCall};
use crate::rbac::{Accounts, ServiceAccountRef};

/// The name of the only cluster when the gateway is configured with one.
pub const DEFAULT_CLUSTER: &str = "default";

/// The annotation `kubectl rollout restart` sets; controllers and tools recognize it.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "docketops";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorOptions {
    /// Limit for one API call.
    pub call_timeout: Duration,
    /// Limit for outcome verification (rollout, deletion).
    pub verify_timeout: Duration,
    /// Wait for workloads to roll out (observedGeneration, updated and available replicas) before passing.
    pub wait_for_rollout: bool,
    /// Pause between read-backs while waiting.
    pub poll_interval: Duration,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(30),
            verify_timeout: Duration::from_secs(120),
            wait_for_rollout: true,
            poll_interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug)]
pub struct Executor {
    /// The cluster's name in the gateway's configuration (`default` for a single cluster).
    cluster: String,
    pub(crate) kube: KubeConnection,
    guardrails: Guardrails,
    pub(crate) accounts: Accounts,
    options: ExecutorOptions,
}

/// What a GET or LIST returned.
#[derive(Debug, Clone, Serialize)]
pub struct ReadResult {
    pub executor_account: String,
    pub api_status: u16,
    /// GET: the object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    /// LIST: the objects of this page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Value>>,
    /// LIST: pass back as `parameters.continue` to get the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
    /// Secrets were read as metadata only.
    pub secret_data_withheld: bool,
}

/// Identity of the live object a preview was made against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LiveObject {
    pub uid: String,
    pub resource_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

/// Where verification observed the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservedIn {
    /// Read back after the change (and again while waiting for a rollout).
    ReadBack,
    /// The API server's answer to the change itself: the object as stored by that write.
    Answer,
}

/// The request the executor will send (Secret values redacted).
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRequest {
    pub method: &'static str,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    pub body: Value,
}

/// The result of [`Executor::preview`]: guardrails passed, live state read, dry-run accepted.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// The action (Secret values redacted unless revealed); [`Preview::action`] has the original.
    #[serde(rename = "action")]
    pub shown_action: Action,
    #[serde(skip)]
    action: Action,
    pub executor_account: String,
    /// `None` when APPLY creates the object.
    pub live: Option<LiveObject>,
    pub request: PlannedRequest,
    pub dry_run_status: u16,
    /// What the API server's dry-run answered: the would-be object (a `Scale` for SCALE; the object or a
    /// `Status` for DELETE), Secret values redacted unless revealed. Dry-run actions answer with it.
    pub dry_run_object: Value,
    pub diff: Vec<Change>,
    #[serde(skip)]
    account: ServiceAccountRef,
    #[serde(skip)]
    plan: Plan,
}

/// The result of [`Executor::execute`].
#[derive(Debug, Clone, Serialize)]
pub struct Execution {
    pub executor_account: String,
    /// The API server's HTTP status for the call.
    pub api_status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The object as the API server stored it (its answer to the change); not recorded here, the
    /// verification records what it checked of it.
    #[serde(skip)]
    pub(crate) answer: Option<Value>,
}

/// One comparison of the read-back object with the intended state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// JSON pointer into the object, or a name like `deleted`.
    pub field: String,
    pub expected: Value,
    pub observed: Value,
    pub passed: bool,
}

/// Rollout progress of a workload after the change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rollout {
    /// `complete`, `timed_out`, `failed` (e.g. progress deadline exceeded), `not_tracked` (OnDelete strategy)
    /// or `skipped` (waiting turned off).
    pub state: &'static str,
    pub message: String,
    /// generation, observedGeneration and the replica counts that were read (null: none were, e.g. a SCALE
    /// verified from its answer, the scale subresource).
    pub observed: Value,
}

/// The result of [`Executor::verify`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    pub passed: bool,
    pub observed_in: ObservedIn,
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_resource_version: Option<String>,
    pub waited_ms: u64,
    /// Set when the object could not be read back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

impl Executor {
    pub fn new(kube: KubeConnection, guardrails: Guardrails, release: &str, options: ExecutorOptions) -> Self {
        let accounts = Accounts {
            release: release.to_owned(),
            gateway_namespace: guardrails.gateway_namespace.clone(),
        };
        Self {
            cluster: DEFAULT_CLUSTER.to_owned(),
            kube,
            guardrails,
            accounts,
            options,
        }
    }

    /// Names the cluster this executor reaches (scopes that name clusters are matched against it).
    pub fn with_cluster_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.cluster);
        self
    }

    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    pub fn guardrails(&self) -> &Guardrails {
        &self.guardrails
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The guardrails alone (no Kubernetes call), with the scopes that cover this cluster.
    pub fn check(&self, action: &Action, scopes: &[Scope]) -> Result<(), ExecError> {
        let here: Vec<Scope> = scopes
            .iter()
            .filter(|scope| scope.covers_cluster(&self.cluster))
            .cloned()
            .collect();
        self.guardrails.check(action, &here).map_err(|mut violation| {
            if violation.rule == "scope" {
                violation.message = format!("{} on cluster {:?}", violation.message, self.cluster);
            }
            ExecError::Guardrail(violation)
        })
    }

    fn redact(&self, kind: ResourceKind) -> bool {
        kind == ResourceKind::Secret && !self.guardrails.reveal_secret_data
    }

    /// A discovery or OpenAPI document with the gateway's own credentials (see [`KubeConnection::discovery`]).
    pub async fn discovery(
        &self,
        path: &str,
        accept: Option<&str>,
    ) -> Result<(u16, Vec<u8>, Option<String>), ExecError> {
        self.kube.discovery(path, accept).await
    }

    /// GET or LIST as the namespace's reader account. Secrets are read as metadata only unless revealed.
    pub async fn read(
        &self,
        context: &CallContext,
        action: &Action,
        scopes: &[Scope],
    ) -> Result<ReadResult, ExecError> {
        if action.action_type.is_mutation() {
            return Err(ExecError::client(format!(
                "{} is not a read; use preview and execute",
                action.action_type
            )));
        }
        self.check(action, scopes)?;
        let account = self.accounts.executor(action.namespace.as_deref(), Access::Read);
        let path = self.kube.resource(action.kind).await?;
        let request = path.request(action.namespace.as_deref());
        let metadata_only = self.redact(action.kind);
        let http_request = match (&action.operation, &action.name) {
            (Operation::Get, Some(name)) if metadata_only => request.get_metadata(name, &GetParams::default()),
            (Operation::Get, Some(name)) => request.get(name, &GetParams::default()),
            (
                Operation::List {
                    label_selector,
                    field_selector,
                    limit,
                    continue_token,
                },
                _,
            ) => {
                let mut params = ListParams::default().limit(*limit);
                params.label_selector = label_selector.clone();
                params.field_selector = field_selector.clone();
                params.continue_token = continue_token.clone();
                if metadata_only {
                    request.list_metadata(&params)
                } else {
                    request.list(&params)
                }
            }
            _ => return Err(ExecError::client("GET needs a resource name")),
        }
        .map_err(|e| ExecError::client(e.to_string()))?;
        let answer = self.kube.send(http_request, &account, context).await?;
        let mut result = ReadResult {
            executor_account: account.username(),
            api_status: answer.status,
            object: None,
            items: None,
            continue_token: None,
            secret_data_withheld: metadata_only,
        };
        let mut body = answer.body;
        if action.action_type == ActionType::List {
            result.continue_token = body
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            let mut items = match body.get_mut("items").map(Value::take) {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            for item in &mut items {
                tidy(item);
                if metadata_only {
                    diff::redact_secret(item);
                }
            }
            // A LIST of Namespaces does not show the ones the guardrails keep out of reach.
            if action.kind == ResourceKind::Namespace {
                items.retain(|item| {
                    let name = item
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    self.guardrails.check_namespace(name).is_ok()
                });
            }
            result.items = Some(items);
        } else {
            tidy(&mut body);
            if metadata_only {
                // Metadata can still hold a copy of the data (kubectl's last-applied annotation).
                diff::redact_secret(&mut body);
            }
            result.object = Some(body);
        }
        Ok(result)
    }

    /// Guardrails, the live object, and the exact request sent with server-side dry-run.
    pub async fn preview(
        &self,
        context: &CallContext,
        action: &Action,
        scopes: &[Scope],
    ) -> Result<Preview, ExecError> {
        if !action.action_type.is_mutation() {
            return Err(ExecError::client(format!("{} is a read; use read", action.action_type)));
        }
        self.check(action, scopes)?;
        let account = self.accounts.executor(action.namespace.as_deref(), Access::Mutate);
        let name = action
            .name
            .clone()
            .ok_or_else(|| ExecError::client("a mutation needs a resource name"))?;
        let discovered = self.kube.resource(action.kind).await?;
        let restarted_at = now_rfc3339();
        let (live, plan, dry_run) = match self
            .read_beside_dry_run(context, action, &account, &discovered, &name, &restarted_at)
            .await?
        {
            Some(done) => done,
            None => {
                let live = self.read_live(context, action, &account, &discovered, &name).await?;
                let basis = Basis {
                    live: live.as_ref(),
                    resource_version: live
                        .as_ref()
                        .and_then(|l| l.pointer("/metadata/resourceVersion")?.as_str()),
                    restarted_at: &restarted_at,
                };
                let plan = self.plan(action, discovered, &name, &basis)?;
                let dry_run = self.kube.send(plan.request(true)?, &account, context).await?;
                (live, plan, dry_run)
            }
        };
        Ok(self.preview_of(action, account, live, plan, dry_run))
    }

    /// The live object (the scale subresource for SCALE); `None` when an APPLY will create it.
    async fn read_live(
        &self,
        context: &CallContext,
        action: &Action,
        account: &ServiceAccountRef,
        discovered: &ResourcePath,
        name: &str,
    ) -> Result<Option<Value>, ExecError> {
        let collection = discovered.request(action.namespace.as_deref());
        let request = match action.operation {
            Operation::Scale { .. } => collection.get_subresource("scale", name),
            _ => collection.get(name, &GetParams::default()),
        }
        .map_err(|e| ExecError::client(e.to_string()))?;
        match self.kube.send(request, account, context).await {
            Ok(answer) => Ok(Some(answer.body)),
            Err(ExecError::Api { status: 404, .. }) if action.action_type == ActionType::Apply => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn plan(
        &self,
        action: &Action,
        discovered: ResourcePath,
        name: &str,
        basis: &Basis<'_>,
    ) -> Result<Plan, ExecError> {
        let (path, call) = plan::planned_call(&self.kube, action, discovered, basis)?;
        Ok(Plan {
            path,
            namespace: action.namespace.clone(),
            name: name.to_owned(),
            call,
        })
    }

    /// One round trip instead of two where the request does not depend on the live object: the read and a
    /// dry-run without precondition go out together. The dry-run's answer carries the resourceVersion it
    /// was computed on (a dry-run does not advance it); when that is the one read, the pair is exactly what
    /// the serial path would have seen, and the change is planned with that precondition. Otherwise (the
    /// object changed in between, or either call failed) `None`: the caller takes the serial path.
    async fn read_beside_dry_run(
        &self,
        context: &CallContext,
        action: &Action,
        account: &ServiceAccountRef,
        discovered: &ResourcePath,
        name: &str,
        restarted_at: &str,
    ) -> Result<Option<(Option<Value>, Plan, Answer)>, ExecError> {
        if plan::needs_live(&action.operation) {
            return Ok(None);
        }
        let unconditioned = Basis {
            live: None,
            resource_version: None,
            restarted_at,
        };
        let speculative = self.plan(action, discovered.clone(), name, &unconditioned)?;
        let (live, dry_run) = tokio::join!(
            self.read_live(context, action, account, discovered, name),
            self.kube.send(speculative.request(true)?, account, context),
        );
        // The read's error is the serial path's first error too; a dry-run refused for another reason than
        // a conflict (the precondition was left out) would be refused the same way with it.
        let Some(live) = live? else { return Ok(None) };
        let dry_run = match dry_run {
            Ok(answer) => answer,
            Err(ExecError::Api { status: 409, .. }) => return Ok(None),
            Err(error @ ExecError::Api { .. }) => return Err(error),
            Err(_) => return Ok(None),
        };
        let base = |object: &Value| {
            (
                str_at(object, "/metadata/uid"),
                str_at(object, "/metadata/resourceVersion"),
            )
        };
        let (uid, resource_version) = base(&live);
        if resource_version.is_none() || base(&dry_run.body) != (uid, resource_version.clone()) {
            return Ok(None);
        }
        let basis = Basis {
            live: Some(&live),
            resource_version: resource_version.as_deref(),
            restarted_at,
        };
        let plan = self.plan(action, discovered.clone(), name, &basis)?;
        Ok(Some((Some(live), plan, dry_run)))
    }

    fn preview_of(
        &self,
        action: &Action,
        account: ServiceAccountRef,
        live: Option<Value>,
        plan: Plan,
        dry_run: Answer,
    ) -> Preview {
        let live_identity = live.as_ref().map(|object| LiveObject {
            uid: str_at(object, "/metadata/uid").unwrap_or_default(),
            resource_version: str_at(object, "/metadata/resourceVersion").unwrap_or_default(),
            generation: object.pointer("/metadata/generation").and_then(Value::as_i64),
        });
        let redact = self.redact(action.kind);
        let diff = match (&plan.call, &live) {
            (PlannedCall::Delete(_), Some(live)) => vec![Change {
                op: "remove",
                path: String::new(),
                from: Some(
                    json!({"kind": action.kind.as_str(), "namespace": action.namespace, "name": action.name,
                                  "uid": str_at(live, "/metadata/uid"),
                                  "resourceVersion": str_at(live, "/metadata/resourceVersion")}),
                ),
                to: None,
            }],
            _ => diff::changes(live.as_ref(), &dry_run.body, redact),
        };
        let mut dry_run_object = dry_run.body;
        if redact {
            diff::redact_secret(&mut dry_run_object);
        }
        Preview {
            shown_action: if redact { action.redacted() } else { action.clone() },
            action: action.clone(),
            executor_account: account.username(),
            live: live_identity,
            request: plan.describe(redact),
            dry_run_status: dry_run.status,
            dry_run_object,
            diff,
            account,
            plan,
        }
    }

    /// Sends the previewed request for real. A change to the object since the preview gives 409.
    pub async fn execute(&self, context: &CallContext, preview: &Preview) -> Result<Execution, ExecError> {
        let answer = self
            .kube
            .send(preview.plan.request(false)?, &preview.account, context)
            .await?;
        Ok(Execution {
            executor_account: preview.account.username(),
            api_status: answer.status,
            resource_version: str_at(&answer.body, "/metadata/resourceVersion"),
            generation: answer.body.pointer("/metadata/generation").and_then(Value::as_i64),
            answer: Some(answer.body),
        })
    }

    /// The verification that the change's own answer settles, without a read-back: a successful write
    /// answers with the object as the API server stored it, so checking the intended state there is what a
    /// read right after would check. `None` where a read-back tells something new: a deletion (is it gone?)
    /// and a workload whose rollout is waited for.
    pub fn verify_from_answer(&self, preview: &Preview, execution: &Execution) -> Option<Verification> {
        let action = &preview.action;
        let object = execution.answer.as_ref()?;
        let rollout_applies = rollout_applies(action);
        if matches!(action.operation, Operation::Delete { .. }) || (rollout_applies && self.options.wait_for_rollout) {
            return None;
        }
        let checks = intended_state_checks(preview, object, self.redact(action.kind));
        let passed = checks.iter().all(|c| c.passed);
        // A SCALE's answer is the scale subresource, which has no rollout fields: nothing is claimed of them.
        let whole_object = matches!(&preview.plan.call, PlannedCall::Patch { subresource: None, .. });
        let rollout = (passed && rollout_applies).then(|| Rollout {
            state: "skipped",
            message: "waiting for rollouts is turned off".into(),
            observed: match whole_object {
                true => rollout_status(action.kind, object).1,
                false => Value::Null,
            },
        });
        Some(Verification {
            passed,
            observed_in: ObservedIn::Answer,
            checks,
            rollout,
            observed_resource_version: str_at(object, "/metadata/resourceVersion"),
            waited_ms: 0,
            error: None,
        })
    }

    /// Reads the object back and compares it with the intended state; never fails, reports what it saw.
    pub async fn verify(&self, context: &CallContext, preview: &Preview) -> Verification {
        let started = Instant::now();
        let mut verification = self.verify_until_settled(context, preview, started).await;
        verification.waited_ms = started.elapsed().as_millis() as u64;
        verification
    }

    async fn verify_until_settled(&self, context: &CallContext, preview: &Preview, started: Instant) -> Verification {
        let deadline = started + self.options.verify_timeout;
        let action = &preview.action;
        let redact = self.redact(action.kind);
        loop {
            let waited_ms = started.elapsed().as_millis() as u64;
            let observed = match self.read_back(context, preview).await {
                Ok(observed) => observed,
                Err(error) => {
                    return Verification {
                        passed: false,
                        observed_in: ObservedIn::ReadBack,
                        checks: Vec::new(),
                        rollout: None,
                        observed_resource_version: None,
                        waited_ms,
                        error: Some(error.report()),
                    };
                }
            };
            let observed_resource_version = observed.as_ref().and_then(|o| str_at(o, "/metadata/resourceVersion"));
            let mut report = Verification {
                passed: false,
                observed_in: ObservedIn::ReadBack,
                checks: Vec::new(),
                rollout: None,
                observed_resource_version,
                waited_ms,
                error: None,
            };

            if let Operation::Delete { .. } = action.operation {
                let check = deletion_check(preview, observed.as_ref());
                report.passed = check.passed;
                report.checks.push(check);
                if report.passed || Instant::now() >= deadline {
                    return report;
                }
                tokio::time::sleep(self.options.poll_interval).await;
                continue;
            }

            let Some(object) = observed else {
                report.checks.push(Check {
                    field: "exists".into(),
                    expected: json!(true),
                    observed: json!(false),
                    passed: false,
                });
                return report;
            };
            report.checks = intended_state_checks(preview, &object, redact);
            // The write was synchronous: a field that differs now was changed by someone else (or
            // rewritten by the server); waiting would not bring it back.
            if report.checks.iter().any(|c| !c.passed) {
                return report;
            }
            if !rollout_applies(action) {
                report.passed = true;
                return report;
            }
            let (progress, observed_status) = rollout_status(action.kind, &object);
            let rollout = |state: &'static str, message: String| Rollout {
                state,
                message,
                observed: observed_status.clone(),
            };
            if !self.options.wait_for_rollout {
                report.rollout = Some(rollout("skipped", "waiting for rollouts is turned off".into()));
                report.passed = true;
                return report;
            }
            match progress {
                RolloutProgress::Complete => {
                    report.rollout = Some(rollout("complete", "rolled out".into()));
                    report.passed = true;
                    return report;
                }
                RolloutProgress::NotTracked(why) => {
                    report.rollout = Some(rollout("not_tracked", why));
                    report.passed = true;
                    return report;
                }
                RolloutProgress::Failed(why) => {
                    report.rollout = Some(rollout("failed", why));
                    return report;
                }
                RolloutProgress::Waiting if Instant::now() >= deadline => {
                    report.rollout = Some(rollout(
                        "timed_out",
                        format!(
                            "not rolled out within {} s (a controller must observe generation {} and update the replicas)",
                            self.options.verify_timeout.as_secs(),
                            observed_status["generation"]
                        ),
                    ));
                    return report;
                }
                RolloutProgress::Waiting => {}
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }

    /// The whole object as the action's account sees it now; `None` if it is gone.
    async fn read_back(&self, context: &CallContext, preview: &Preview) -> Result<Option<Value>, ExecError> {
        let path = self.kube.resource(preview.action.kind).await?;
        let request = path
            .request(preview.plan.namespace.as_deref())
            .get(&preview.plan.name, &GetParams::default())
            .map_err(|e| ExecError::client(e.to_string()))?;
        match self.kube.send(request, &preview.account, context).await {
            Ok(answer) => Ok(Some(answer.body)),
            Err(ExecError::Api { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

impl Preview {
    /// The action this preview was made for.
    pub fn action(&self) -> &Action {
        &self.action
    }
}

/// Whether the change starts a rollout that verification can wait for.
fn rollout_applies(action: &Action) -> bool {
    action.kind.is_workload()
        && matches!(
            action.action_type,
            ActionType::Scale | ActionType::Restart | ActionType::SetImage | ActionType::Patch | ActionType::Apply
        )
}

/// The comparisons for each action type (DELETE is handled by `deletion_check`).
fn intended_state_checks(preview: &Preview, object: &Value, redact: bool) -> Vec<Check> {
    let action = &preview.action;
    let mut checks = Vec::new();
    match &action.operation {
        Operation::Scale { replicas } => {
            checks.push(equal_check("/spec/replicas", json!(replicas), object));
        }
        Operation::Restart => {
            let expected = match &preview.plan.call {
                PlannedCall::Patch {
                    patch: PatchBody::Merge(patch),
                    ..
                } => patch
                    .pointer("/spec/template/metadata/annotations")
                    .and_then(|a| a.get(RESTARTED_AT))
                    .cloned()
                    .unwrap_or(Value::Null),
                _ => Value::Null,
            };
            let pointer = format!(
                "/spec/template/metadata/annotations/{}",
                RESTARTED_AT.replace('/', "~1")
            );
            checks.push(equal_check(&pointer, expected, object));
        }
        Operation::SetImage { container, image } => match container_pointer(action.kind, object, container) {
            Some(pointer) => checks.push(equal_check(&format!("{pointer}/image"), json!(image), object)),
            None => checks.push(Check {
                field: format!("container {container}"),
                expected: json!(image),
                observed: Value::Null,
                passed: false,
            }),
        },
        Operation::Patch { patch } => {
            let mut expected = patch.clone();
            if action.kind == ResourceKind::Secret {
                string_data_as_data(&mut expected);
            }
            subset_checks("", &Value::Object(expected), Some(object), true, &mut checks)
        }
        Operation::Apply { manifest, .. } => {
            let mut expected = manifest.clone();
            if action.kind == ResourceKind::Secret {
                string_data_as_data(&mut expected);
            }
            // The object is read back at the served version; the version string itself may differ.
            expected.remove("apiVersion");
            subset_checks("", &Value::Object(expected), Some(object), false, &mut checks);
        }
        Operation::Get | Operation::List { .. } | Operation::Delete { .. } => {}
    }
    if redact {
        for check in &mut checks {
            diff::redact_secret_at(&check.field, &mut check.expected);
            diff::redact_secret_at(&check.field, &mut check.observed);
        }
    }
    checks
}

/// `stringData` is write-only: the API server stores it base64-encoded in `data`, so compare it there.
fn string_data_as_data(expected: &mut serde_json::Map<String, Value>) {
    use base64::Engine;
    let Some(Value::Object(string_data)) = expected.remove("stringData") else {
        return;
    };
    let data = expected.entry("data").or_insert_with(|| json!({}));
    if let Some(data) = data.as_object_mut() {
        for (key, value) in string_data {
            let text = value.as_str().unwrap_or_default();
            data.insert(key, json!(base64::engine::general_purpose::STANDARD.encode(text)));
        }
    }
}

fn equal_check(pointer: &str, expected: Value, object: &Value) -> Check {
    let observed = object.pointer(pointer).cloned().unwrap_or(Value::Null);
    Check {
        field: pointer.to_owned(),
        passed: observed == expected,
        expected,
        observed,
    }
}

/// One check per leaf of `expected`: the observed object must contain it (a merge patch's `null` means absent).
fn subset_checks(prefix: &str, expected: &Value, observed: Option<&Value>, merge_nulls: bool, out: &mut Vec<Check>) {
    match expected {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                let pointer = format!("{prefix}/{}", key.replace('~', "~0").replace('/', "~1"));
                let child = observed.and_then(|o| o.get(key));
                if merge_nulls && value.is_null() {
                    out.push(Check {
                        field: pointer,
                        expected: Value::Null,
                        observed: child.cloned().unwrap_or(Value::Null),
                        passed: child.is_none(),
                    });
                } else {
                    subset_checks(&pointer, value, child, merge_nulls, out);
                }
            }
        }
        _ => out.push(Check {
            field: prefix.to_owned(),
            expected: expected.clone(),
            observed: observed.cloned().unwrap_or(Value::Null),
            passed: observed.is_some_and(|o| contains(expected, o)),
        }),
    }
}

/// Whether `observed` has everything `expected` has (the server adds defaults; lists may gain entries).
pub(crate) fn contains(expected: &Value, observed: &Value) -> bool {
    match (expected, observed) {
        (Value::Object(e), Value::Object(o)) => e.iter().all(|(k, v)| o.get(k).is_some_and(|ov| contains(v, ov))),
        (Value::Array(e), Value::Array(o)) => e.iter().all(|ev| o.iter().any(|ov| contains(ev, ov))),
        _ => expected == observed,
    }
}

fn deletion_check(preview: &Preview, observed: Option<&Value>) -> Check {
    let previewed_uid = preview.live.as_ref().map(|l| l.uid.clone()).unwrap_or_default();
    match observed {
        None => Check {
            field: "deleted".into(),
            expected: json!(true),
            observed: json!(true),
            passed: true,
        },
        // Deleted and created again by someone: the object we deleted is gone.
        Some(object) if str_at(object, "/metadata/uid").as_deref() != Some(previewed_uid.as_str()) => Check {
            field: "deleted".into(),
            expected: json!(true),
            observed: json!({"recreated_with_uid": str_at(object, "/metadata/uid")}),
            passed: true,
        },
        Some(object) => Check {
            field: "deleted".into(),
            expected: json!(true),
            observed: json!({
                "deletionTimestamp": object.pointer("/metadata/deletionTimestamp"),
                "finalizers": object.pointer("/metadata/finalizers"),
            }),
            passed: false,
        },
    }
}

/// Where a workload's rollout stands, as `kubectl rollout status` judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutProgress {
    Complete,
    Waiting,
    /// It will not complete by waiting (e.g. the Deployment's progress deadline passed).
    Failed(String),
    /// Nothing to wait for (a StatefulSet or DaemonSet with the OnDelete strategy).
    NotTracked(String),
}

/// Where a workload's rollout stands, and the fields that were looked at.
pub fn rollout_status(kind: ResourceKind, object: &Value) -> (RolloutProgress, Value) {
    let int = |pointer: &str| object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
    let generation = int("/metadata/generation");
    let observed_generation = int("/status/observedGeneration");
    let desired = object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let seen = observed_generation >= generation;
    let judge = |complete: bool| {
        if complete {
            RolloutProgress::Complete
        } else {
            RolloutProgress::Waiting
        }
    };
    let strategy = object.pointer("/spec/updateStrategy/type").and_then(Value::as_str);
    if matches!(kind, ResourceKind::StatefulSet | ResourceKind::DaemonSet) && strategy == Some("OnDelete") {
        return (
            RolloutProgress::NotTracked("the OnDelete update strategy replaces pods only when they are deleted".into()),
            json!({"updateStrategy": "OnDelete"}),
        );
    }
    match kind {
        ResourceKind::DaemonSet => {
            let desired = int("/status/desiredNumberScheduled");
            let updated = int("/status/updatedNumberScheduled");
            let available = int("/status/numberAvailable");
            (
                judge(seen && updated >= desired && available >= desired),
                json!({"generation": generation, "observedGeneration": observed_generation,
                       "desiredNumberScheduled": desired, "updatedNumberScheduled": updated,
                       "numberAvailable": available}),
            )
        }
        _ => {
            let replicas = int("/status/replicas");
            let updated = int("/status/updatedReplicas");
            let ready = int("/status/readyReplicas");
            let available = int("/status/availableReplicas");
            let observed = json!({"generation": generation, "observedGeneration": observed_generation,
                                  "desired": desired, "replicas": replicas, "updatedReplicas": updated,
                                  "readyReplicas": ready, "availableReplicas": available});
            let progress = match kind {
                ResourceKind::Deployment => {
                    let deadline_passed = object
                        .pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .is_some_and(|conditions| {
                            conditions
                                .iter()
                                .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
                        });
                    if seen && deadline_passed {
                        RolloutProgress::Failed("the Deployment exceeded its progress deadline".into())
                    } else {
                        judge(seen && updated >= desired && replicas <= updated && available >= updated)
                    }
                }
                ResourceKind::StatefulSet => {
                    // With a partition, only the pods at or above it are updated.
                    let partition = int("/spec/updateStrategy/rollingUpdate/partition");
                    judge(seen && updated >= desired - partition && ready >= desired)
                }
                _ => judge(seen && replicas == desired && available >= desired),
            };
            (progress, observed)
        }
    }
}

/// JSON pointer of the container named `name` (containers first, then initContainers).
pub(crate) fn container_pointer(kind: ResourceKind, object: &Value, name: &str) -> Option<String> {
    let spec = kind.pod_spec()?.pointer();
    ["containers", "initContainers"].into_iter().find_map(|list| {
        let items = object.pointer(&format!("{spec}/{list}"))?.as_array()?;
        let index = items
            .iter()
            .position(|c| c.get("name").and_then(Value::as_str) == Some(name))?;
        Some(format!("{spec}/{list}/{index}"))
    })
}

pub(crate) fn container_names(kind: ResourceKind, object: &Value) -> Vec<String> {
    let Some(spec) = kind.pod_spec() else { return Vec::new() };
    ["containers", "initContainers"]
        .into_iter()
        .filter_map(|list| {
            object
                .pointer(&format!("{}/{list}", spec.pointer()))?
                .as_array()
                .cloned()
        })
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

pub(crate) fn str_at(object: &Value, pointer: &str) -> Option<String> {
    object.pointer(pointer).and_then(Value::as_str).map(str::to_owned)
}

/// Drops `managedFields` from what a read returns: bookkeeping of the API server, not the object.
fn tidy(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

/// RFC 3339 in UTC with seconds, the form `kubectl rollout restart` writes.
fn now_rfc3339() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .expect("formattable time")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_of_a_deployment_needs_the_controller_to_catch_up() {
        let object = json!({"metadata": {"generation": 2}, "spec": {"replicas": 3},
                            "status": {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}});
        assert_eq!(
            rollout_status(ResourceKind::Deployment, &object).0,
            RolloutProgress::Waiting
        );
        let object = json!({"metadata": {"generation": 2}, "spec": {"replicas": 3},
                            "status": {"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}});
        let old_replica_left = rollout_status(ResourceKind::Deployment, &object).0;
        assert_eq!(old_replica_left, RolloutProgress::Waiting);
        let object = json!({"metadata": {"generation": 2}, "spec": {"replicas": 3},
                            "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}});
        assert_eq!(
            rollout_status(ResourceKind::Deployment, &object).0,
            RolloutProgress::Complete
        );
        let stuck = json!({"metadata": {"generation": 2}, "spec": {"replicas": 3},
                           "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1,
                                      "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}});
        assert!(matches!(
            rollout_status(ResourceKind::Deployment, &stuck).0,
            RolloutProgress::Failed(_)
        ));
        let on_delete =
            json!({"metadata": {"generation": 2}, "spec": {"replicas": 3, "updateStrategy": {"type": "OnDelete"}}});
        assert!(matches!(
            rollout_status(ResourceKind::StatefulSet, &on_delete).0,
            RolloutProgress::NotTracked(_)
        ));
        let partitioned = json!({"metadata": {"generation": 2},
                                 "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}},
                                 "status": {"observedGeneration": 2, "updatedReplicas": 1, "readyReplicas": 3}});
        assert_eq!(
            rollout_status(ResourceKind::StatefulSet, &partitioned).0,
            RolloutProgress::Complete
        );
    }

    #[test]
    fn subset_checks_follow_merge_patch_semantics() {
        let live = json!({"metadata": {"labels": {"a": "1"}}, "data": {"k": "v"},
                          "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}});
        let mut checks = Vec::new();
        subset_checks(
            "",
            &json!({"metadata": {"labels": {"a": "1", "gone": null}}, "data": {"k": "v"}}),
            Some(&live),
            true,
            &mut checks,
        );
        assert!(checks.iter().all(|c| c.passed), "{checks:?}");
        let mut checks = Vec::new();
        subset_checks(
            "",
            &json!({"data": {"k": "other"}, "spec": {"ports": [{"port": 80}]}}),
            Some(&live),
            false,
            &mut checks,
        );
        assert_eq!(
            checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.field.as_str())
                .collect::<Vec<_>>(),
            ["/data/k"]
        );
    }

    #[test]
    fn containers_are_found_by_name_in_every_pod_spec_shape() {
        let deploy = json!({"spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}],
                                                          "initContainers": [{"name": "init"}]}}}});
        assert_eq!(
            container_pointer(ResourceKind::Deployment, &deploy, "b").unwrap(),
            "/spec/template/spec/containers/1"
        );
        assert_eq!(
            container_pointer(ResourceKind::Deployment, &deploy, "init").unwrap(),
            "/spec/template/spec/initContainers/0"
        );
        assert_eq!(container_pointer(ResourceKind::Deployment, &deploy, "c"), None);
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "x"}]}}}}}});
        assert_eq!(
            container_pointer(ResourceKind::CronJob, &cron, "x").unwrap(),
            "/spec/jobTemplate/spec/template/spec/containers/0"
        );
        assert_eq!(container_names(ResourceKind::Deployment, &deploy), ["a", "b", "init"]);
    }
}

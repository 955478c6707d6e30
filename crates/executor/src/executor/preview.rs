//! The preview of a change: the guardrails, the live object, and the exact request sent with server-side
//! dry-run; the diff between live and dry-run object is what approvers see.

use kube::api::GetParams;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Executor, str_at};
use crate::action::{Access, Action, ActionType, Operation};
use crate::diff::{self, Change};
use crate::error::ExecError;
use crate::guardrails::Scope;
use crate::kube::{Answer, CallContext, ResourcePath};
use crate::plan::{self, Basis, Plan, PlannedCall};
use crate::rbac::ServiceAccountRef;

/// Identity of the live object a preview was made against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LiveObject {
    /// The object's uid (a DELETE's precondition, with the resourceVersion).
    pub uid: String,
    /// The `resourceVersion` the change is sent with as precondition.
    pub resource_version: String,
    /// `metadata.generation`, if the object has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

/// The request the executor will send (Secret values redacted).
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRequest {
    /// `PATCH` or `DELETE`.
    pub method: &'static str,
    /// The URL path, subresource included.
    pub path: String,
    /// The patch's content type (JSON merge patch or server-side apply); `None` for DELETE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The patch, or a DELETE's options (propagation, grace period, preconditions).
    pub body: Value,
}

/// The result of [`Executor::preview`]: guardrails passed, live state read, dry-run accepted.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// The action (Secret values redacted unless revealed); [`Preview::action`] has the original.
    #[serde(rename = "action")]
    pub shown_action: Action,
    #[serde(skip)]
    pub(super) action: Action,
    /// The Kubernetes user the change is sent as (`system:serviceaccount:<namespace>:<name>`).
    pub executor_account: String,
    /// `None` when APPLY creates the object.
    pub live: Option<LiveObject>,
    /// The request [`Executor::execute`] sends.
    pub request: PlannedRequest,
    /// The API server's HTTP status for the dry-run.
    pub dry_run_status: u16,
    /// What the API server's dry-run answered: the would-be object (a `Scale` for SCALE; the object or a
    /// `Status` for DELETE), Secret values redacted unless revealed. Dry-run actions answer with it.
    pub dry_run_object: Value,
    /// What the change would do: the live object against the dry-run's, or for DELETE the object's removal.
    pub diff: Vec<Change>,
    #[serde(skip)]
    pub(super) account: ServiceAccountRef,
    #[serde(skip)]
    pub(super) plan: Plan,
}

impl Preview {
    /// The action this preview was made for.
    pub fn action(&self) -> &Action {
        &self.action
    }
}

impl Executor {
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
}

/// RFC 3339 in UTC with seconds, the form `kubectl rollout restart` writes.
fn now_rfc3339() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .expect("formattable time")
}

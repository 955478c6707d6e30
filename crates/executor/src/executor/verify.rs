//! Outcome verification: the object read back (or the change's own answer) compared with the intended state,
//! waiting for a workload's rollout where that means something.

use std::time::Instant;

use kube::api::GetParams;
use serde::Serialize;
use serde_json::{Value, json};

use super::intended_state::{deletion_check, intended_state_checks};
use super::rollout::{RolloutProgress, rollout_applies, rollout_status};
use super::{Execution, Executor, Preview, str_at};
use crate::action::{Operation, ResourceKind};
use crate::error::{ErrorReport, ExecError};
use crate::kube::CallContext;
use crate::plan::PlannedCall;

/// Where verification observed the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservedIn {
    /// Read back after the change (and again while waiting for a rollout).
    ReadBack,
    /// The API server's answer to the change itself: the object as stored by that write.
    Answer,
}

/// One comparison of the read-back object with the intended state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// JSON pointer into the object, or a name like `deleted`.
    pub field: String,
    /// What the intended state holds there (`null`: absent).
    pub expected: Value,
    /// What the object holds there (`null`: absent).
    pub observed: Value,
    /// Whether the object shows the intended value.
    pub passed: bool,
}

/// Rollout progress of a workload after the change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rollout {
    /// `complete`, `timed_out`, `failed` (e.g. progress deadline exceeded), `not_tracked` (OnDelete strategy)
    /// or `skipped` (waiting turned off).
    pub state: &'static str,
    /// What the state means, e.g. why the rollout failed.
    pub message: String,
    /// generation, observedGeneration and the replica counts that were read (null: none were, e.g. a SCALE
    /// verified from its answer, the scale subresource).
    pub observed: Value,
}

/// The result of [`Executor::verify`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    /// Whether every check passed and, where a rollout was waited for, it completed (or is not tracked).
    pub passed: bool,
    /// Where the object was observed.
    pub observed_in: ObservedIn,
    /// Every comparison made.
    pub checks: Vec<Check>,
    /// The workload's rollout, once the checks passed; `None` for changes that do not roll out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// The `resourceVersion` of the object observed, if there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_resource_version: Option<String>,
    /// How long verification took, in milliseconds (0 when the change's answer settled it).
    pub waited_ms: u64,
    /// Set when the object could not be read back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

/// A verification is recorded as it is, as `outcome.verified`.
impl domain::payload::Payload for Verification {
    fn kind(&self) -> domain::EntryKind {
        domain::EntryKind::OutcomeVerified
    }
}

impl Executor {
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

    /// Reads back until the outcome is settled: passed, failed, or out of time.
    async fn verify_until_settled(&self, context: &CallContext, preview: &Preview, started: Instant) -> Verification {
        let deadline = started + self.options.verify_timeout;
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
            if let Some(report) = self.judge_read_back(preview, observed, waited_ms, deadline) {
                return report;
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }

    /// One read-back judged: `Some` when it settles the verification, `None` to read again after the poll
    /// interval (a deletion or a rollout still under way, with time left).
    fn judge_read_back(
        &self,
        preview: &Preview,
        observed: Option<Value>,
        waited_ms: u64,
        deadline: Instant,
    ) -> Option<Verification> {
        let action = &preview.action;
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
            return (report.passed || Instant::now() >= deadline).then_some(report);
        }

        let Some(object) = observed else {
            report.checks.push(Check {
                field: "exists".into(),
                expected: json!(true),
                observed: json!(false),
                passed: false,
            });
            return Some(report);
        };
        report.checks = intended_state_checks(preview, &object, self.redact(action.kind));
        // The write was synchronous: a field that differs now was changed by someone else (or
        // rewritten by the server); waiting would not bring it back.
        if report.checks.iter().any(|c| !c.passed) {
            return Some(report);
        }
        if !rollout_applies(action) {
            report.passed = true;
            return Some(report);
        }
        let (passed, rollout) = self.judge_rollout(action.kind, &object, deadline)?;
        report.passed = passed;
        report.rollout = Some(rollout);
        Some(report)
    }

    /// Where a workload's rollout leaves the verification: `Some((passed, rollout))` once settled, `None`
    /// while it is under way with time left.
    fn judge_rollout(&self, kind: ResourceKind, object: &Value, deadline: Instant) -> Option<(bool, Rollout)> {
        let (progress, observed_status) = rollout_status(kind, object);
        let rollout = |state: &'static str, message: String| Rollout {
            state,
            message,
            observed: observed_status.clone(),
        };
        if !self.options.wait_for_rollout {
            return Some((true, rollout("skipped", "waiting for rollouts is turned off".into())));
        }
        match progress {
            RolloutProgress::Complete => Some((true, rollout("complete", "rolled out".into()))),
            RolloutProgress::NotTracked(why) => Some((true, rollout("not_tracked", why))),
            RolloutProgress::Failed(why) => Some((false, rollout("failed", why))),
            RolloutProgress::Waiting if Instant::now() >= deadline => Some((
                false,
                rollout(
                    "timed_out",
                    format!(
                        "not rolled out within {} s (a controller must observe generation {} and update the replicas)",
                        self.options.verify_timeout.as_secs(),
                        observed_status["generation"]
                    ),
                ),
            )),
            RolloutProgress::Waiting => None,
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

//! Did a previewed change take effect? Asked after an interruption: the gateway stored the preview
//! (its intent) before sending the change, then lost the answer (a crash, a kill, a database error).
//!
//! The answer comes from the object alone, read under the action's executor account. Execution sends the
//! previewed request with the previewed `resourceVersion` as a precondition, so an object still at that
//! version was not changed by it; an object that holds every previewed field value was; anything else is
//! reported as unknown rather than guessed.

use kube::api::GetParams;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::action::{Access, Action, Operation, ResourceKind};
use crate::diff::{REDACTED, redact_secret_at};
use crate::error::ExecError;
use crate::executor::{Check, Executor, LiveObject, contains, str_at};
use crate::kube::CallContext;

/// What the gateway stored before sending a change: the serialized [`crate::Preview`], read back.
#[derive(Debug, Clone, Deserialize)]
pub struct Intent {
    /// `None`: the change creates the object.
    pub live: Option<LiveObject>,
    /// The previewed changes.
    pub diff: Vec<IntendedChange>,
}

/// One previewed change, as stored (see [`crate::diff::Change`]).
#[derive(Debug, Clone, Deserialize)]
pub struct IntendedChange {
    /// `add`, `remove` or `replace`.
    pub op: String,
    /// The JSON pointer of the field.
    pub path: String,
    /// The value after the change; `None` for `remove`.
    #[serde(default)]
    pub to: Option<Value>,
}

/// Whether the change took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The object shows the change: it holds every previewed value, or (DELETE) it is gone or being deleted.
    Applied,
    /// The object is still at the previewed `resourceVersion`, or was never created.
    NotApplied,
    /// The object alone cannot tell: it changed otherwise, was replaced, or is gone.
    Unknown,
}

/// The answer, with the evidence for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inspection {
    /// Whether the change took effect.
    pub effect: Effect,
    /// Why, in one sentence.
    pub reason: String,
    /// The object now (`None`: it does not exist).
    pub observed: Option<LiveObject>,
    /// The previewed field values compared with the object now.
    pub checks: Vec<Check>,
}

impl Executor {
    /// Reads the action's object and judges whether `intent` took effect.
    pub async fn inspect(
        &self,
        context: &CallContext,
        action: &Action,
        intent: &Intent,
    ) -> Result<Inspection, ExecError> {
        let account = self.accounts.executor(action.namespace.as_deref(), Access::Mutate);
        let name = action
            .name
            .as_deref()
            .ok_or_else(|| ExecError::client("a mutation needs a resource name"))?;
        let path = self.kube.resource(action.kind).await?;
        let request = path
            .request(action.namespace.as_deref())
            .get(name, &GetParams::default())
            .map_err(|e| ExecError::client(e.to_string()))?;
        let object = match self.kube.send(request, &account, context).await {
            Ok(answer) => Some(answer.body),
            Err(ExecError::Api { status: 404, .. }) => None,
            Err(error) => return Err(error),
        };
        Ok(judge(action, intent, object.as_ref()))
    }
}

/// The judgement itself, a pure function of the intent and the object now.
pub fn judge(action: &Action, intent: &Intent, object: Option<&Value>) -> Inspection {
    let observed = object.map(|o| LiveObject {
        uid: str_at(o, "/metadata/uid").unwrap_or_default(),
        resource_version: str_at(o, "/metadata/resourceVersion").unwrap_or_default(),
        generation: o.pointer("/metadata/generation").and_then(Value::as_i64),
    });
    let same_object = match (&intent.live, &observed) {
        (Some(live), Some(now)) => live.uid == now.uid,
        _ => false,
    };
    let unchanged = same_object
        && intent.live.as_ref().map(|l| &l.resource_version) == observed.as_ref().map(|o| &o.resource_version);
    let answer = |effect, reason: &str, checks| Inspection {
        effect,
        reason: reason.into(),
        observed: observed.clone(),
        checks,
    };
    if unchanged {
        return answer(
            Effect::NotApplied,
            "the object is at the previewed resourceVersion: the change was not applied",
            Vec::new(),
        );
    }
    if let Operation::Delete { .. } = action.operation {
        let deleting = object.is_some_and(|o| o.pointer("/metadata/deletionTimestamp").is_some());
        return match object {
            None => answer(Effect::Applied, "the object is gone", Vec::new()),
            Some(_) if !same_object => answer(
                Effect::Applied,
                "the previewed object is gone (one with another uid exists)",
                Vec::new(),
            ),
            Some(_) if deleting => answer(Effect::Applied, "the object is being deleted", Vec::new()),
            Some(_) => answer(
                Effect::Unknown,
                "the object changed since the preview but is not being deleted",
                Vec::new(),
            ),
        };
    }
    let Some(object) = object else {
        return match intent.live {
            None => answer(Effect::NotApplied, "the object was not created", Vec::new()),
            Some(_) => answer(Effect::Unknown, "the object no longer exists", Vec::new()),
        };
    };
    let secret = action.kind == ResourceKind::Secret;
    let checks: Vec<Check> = intent
        .diff
        .iter()
        // Redacted values cannot be compared (and the object's must not be recorded).
        .filter(|c| !c.to.as_ref().is_some_and(holds_redacted))
        .map(|change| {
            let mut expected = if change.op == "remove" {
                Value::Null
            } else {
                change.to.clone().unwrap_or(Value::Null)
            };
            let mut observed = object.pointer(&change.path).cloned().unwrap_or(Value::Null);
            // The server adds defaults and controllers annotate: the previewed values must be there, not alone.
            let passed = match (&expected, &observed) {
                (Value::Null, observed) => observed.is_null(),
                (expected, observed) => contains(expected, observed),
            };
            if secret {
                redact_secret_at(&change.path, &mut expected);
                redact_secret_at(&change.path, &mut observed);
            }
            Check {
                field: change.path.clone(),
                passed,
                expected,
                observed,
            }
        })
        .collect();
    let created_or_same = intent.live.is_none() || same_object;
    if created_or_same && !checks.is_empty() && checks.iter().all(|c| c.passed) {
        answer(Effect::Applied, "the object holds every previewed change", checks)
    } else if !created_or_same {
        answer(
            Effect::Unknown,
            "the object was replaced since the preview (another uid)",
            checks,
        )
    } else {
        answer(
            Effect::Unknown,
            "the object changed since the preview but does not show every previewed change",
            checks,
        )
    }
}

fn holds_redacted(value: &Value) -> bool {
    match value {
        Value::String(text) => text == REDACTED,
        Value::Array(items) => items.iter().any(holds_redacted),
        Value::Object(map) => map.values().any(holds_redacted),
        _ => false,
    }
}

/// The evidence as recorded in the ledger.
pub fn evidence(inspection: &Inspection, intent: &Intent) -> Value {
    json!({"previewed": intent.live, "observed": inspection.observed, "reason": inspection.reason,
           "checks": inspection.checks})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::ActionRequest;

    fn action(body: Value) -> Action {
        Action::from_request(&serde_json::from_value::<ActionRequest>(body).unwrap()).unwrap()
    }

    fn scale() -> Action {
        action(
            json!({"action_type": "SCALE", "namespace": "ns", "resource_kind": "Deployment",
                      "resource_name": "web", "parameters": {"replicas": 5}}),
        )
    }

    fn intent(rv: &str) -> Intent {
        serde_json::from_value(json!({"live": {"uid": "u1", "resource_version": rv},
            "diff": [{"op": "replace", "path": "/spec/replicas", "from": 2, "to": 5}], "other": 1}))
        .unwrap()
    }

    fn object(uid: &str, rv: &str, replicas: u32) -> Value {
        json!({"metadata": {"uid": uid, "resourceVersion": rv}, "spec": {"replicas": replicas}})
    }

    #[test]
    fn same_version_means_not_applied() {
        let judged = judge(&scale(), &intent("10"), Some(&object("u1", "10", 2)));
        assert_eq!(judged.effect, Effect::NotApplied);
    }

    #[test]
    fn the_previewed_values_mean_applied() {
        let judged = judge(&scale(), &intent("10"), Some(&object("u1", "11", 5)));
        assert_eq!(judged.effect, Effect::Applied, "{judged:?}");
        assert_eq!(judged.checks.len(), 1);
    }

    #[test]
    fn other_values_or_another_object_mean_unknown() {
        assert_eq!(
            judge(&scale(), &intent("10"), Some(&object("u1", "11", 3))).effect,
            Effect::Unknown
        );
        assert_eq!(
            judge(&scale(), &intent("10"), Some(&object("u2", "11", 5))).effect,
            Effect::Unknown
        );
        assert_eq!(judge(&scale(), &intent("10"), None).effect, Effect::Unknown);
    }

    #[test]
    fn deletion_is_judged_by_absence() {
        let delete = action(
            json!({"action_type": "DELETE", "namespace": "ns", "resource_kind": "ConfigMap",
                                   "resource_name": "c"}),
        );
        let intent: Intent =
            serde_json::from_value(json!({"live": {"uid": "u1", "resource_version": "7"}, "diff": []})).unwrap();
        assert_eq!(judge(&delete, &intent, None).effect, Effect::Applied);
        assert_eq!(
            judge(&delete, &intent, Some(&object("u1", "7", 0))).effect,
            Effect::NotApplied
        );
        let terminating = json!({"metadata": {"uid": "u1", "resourceVersion": "8", "deletionTimestamp": "t"}});
        assert_eq!(judge(&delete, &intent, Some(&terminating)).effect, Effect::Applied);
    }

    #[test]
    fn a_created_object_may_hold_more_than_was_previewed() {
        let create = action(
            json!({"action_type": "APPLY", "namespace": "ns", "resource_kind": "ConfigMap",
            "resource_name": "c", "parameters": {"manifest": {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "ns"}, "data": {"k": "v"}}}}),
        );
        let intent: Intent = serde_json::from_value(json!({"live": null, "diff": [
            {"op": "add", "path": "/metadata", "to": {"name": "c", "namespace": "ns"}},
            {"op": "add", "path": "/data", "to": {"k": "v"}}]}))
        .unwrap();
        let created = json!({"metadata": {"name": "c", "namespace": "ns", "uid": "u", "resourceVersion": "1",
                                          "annotations": {"added": "by a controller"}}, "data": {"k": "v"}});
        assert_eq!(judge(&create, &intent, Some(&created)).effect, Effect::Applied);
        assert_eq!(judge(&create, &intent, None).effect, Effect::NotApplied);
        let other = json!({"metadata": {"name": "c", "namespace": "ns"}, "data": {"k": "other"}});
        assert_eq!(judge(&create, &intent, Some(&other)).effect, Effect::Unknown);
    }

    #[test]
    fn secret_values_never_reach_the_evidence() {
        let patch = action(
            json!({"action_type": "PATCH", "namespace": "ns", "resource_kind": "Secret",
            "resource_name": "s", "parameters": {"patch": {"data": {"k": "bmV3"}, "metadata": {"labels": {"a": "b"}}}}}),
        );
        let intent: Intent = serde_json::from_value(json!({"live": {"uid": "u", "resource_version": "1"}, "diff": [
            {"op": "add", "path": "/data", "to": {"k": "<redacted>"}},
            {"op": "add", "path": "/metadata/labels", "to": {"a": "b"}}]}))
        .unwrap();
        let secret = json!({"metadata": {"uid": "u", "resourceVersion": "2", "labels": {"a": "b"}},
                            "data": {"k": "c2VjcmV0LXZhbHVl"}});
        let judged = judge(&patch, &intent, Some(&secret));
        assert_eq!(judged.effect, Effect::Applied, "{judged:?}");
        assert!(!serde_json::to_string(&judged).unwrap().contains("c2VjcmV0LXZhbHVl"));
    }
}

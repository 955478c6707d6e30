//! How far a workload's rollout is, judged as `kubectl rollout status` judges it.

use serde_json::{Value, json};

use crate::action::{Action, ActionType, ResourceKind};

/// Whether the change starts a rollout that verification can wait for.
pub(super) fn rollout_applies(action: &Action) -> bool {
    action.kind.is_workload()
        && matches!(
            action.action_type,
            ActionType::Scale | ActionType::Restart | ActionType::SetImage | ActionType::Patch | ActionType::Apply
        )
}

/// Where a workload's rollout stands, as `kubectl rollout status` judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutProgress {
    /// The controller has observed the change and the replicas are updated and available.
    Complete,
    /// Still under way: the change not observed yet, or replicas not yet updated or available.
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
}

//! What a fake cluster needs to answer like the executor (feature `fake`, for tests only): a preview of a
//! change it computed itself, and the answer to executing it. Nothing here can reach a real API server:
//! the plan of a fake preview is never sent.

use kube::api::DeleteParams;
use serde_json::Value;

use super::{Execution, LiveObject, PlannedRequest, Preview};
use crate::action::{Action, ResourceKind};
use crate::diff;
use crate::kube::ResourcePath;
use crate::plan::{Plan, PlannedCall};
use crate::rbac::ServiceAccountRef;

impl Preview {
    /// `action` would turn `live` (`None`: the object does not exist) into `after`.
    pub fn fake(action: &Action, live: Option<&Value>, after: Value) -> Preview {
        let secret = action.kind == ResourceKind::Secret;
        let text = |object: &Value, pointer: &str| object.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
        let account = ServiceAccountRef {
            namespace: "docketops".into(),
            name: "fake-executor".into(),
        };
        let name = action.name.clone().unwrap_or_default();
        Preview {
            shown_action: if secret { action.redacted() } else { action.clone() },
            action: action.clone(),
            executor_account: account.username(),
            live: live.map(|object| LiveObject {
                uid: text(object, "/metadata/uid").unwrap_or_default(),
                resource_version: text(object, "/metadata/resourceVersion").unwrap_or_default(),
                generation: object.pointer("/metadata/generation").and_then(Value::as_i64),
            }),
            request: PlannedRequest {
                method: "PATCH",
                path: format!("/fake/{}", action.target()),
                content_type: None,
                body: Value::Null,
            },
            dry_run_status: 200,
            diff: diff::changes(live, &after, secret),
            dry_run_object: after,
            account,
            plan: Plan {
                path: ResourcePath::unresolved(action.kind, "v1"),
                namespace: action.namespace.clone(),
                name,
                call: PlannedCall::Delete(DeleteParams::default()),
            },
        }
    }
}

impl Execution {
    /// The API server's answer to a change: `object` as stored (`None` for a deletion).
    pub fn fake(preview: &Preview, object: Option<Value>) -> Execution {
        let resource_version = object
            .as_ref()
            .and_then(|o| o.pointer("/metadata/resourceVersion"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Execution {
            executor_account: preview.executor_account.clone(),
            api_status: 200,
            generation: object
                .as_ref()
                .and_then(|o| o.pointer("/metadata/generation"))
                .and_then(Value::as_i64),
            resource_version,
            answer: object,
        }
    }
}

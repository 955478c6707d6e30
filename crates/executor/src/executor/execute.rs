//! Execution: the previewed request sent for real, with the previewed object's version as precondition.

use serde::Serialize;
use serde_json::Value;

use super::{Executor, Preview, str_at};
use crate::error::ExecError;
use crate::kube::CallContext;

/// The result of [`Executor::execute`].
#[derive(Debug, Clone, Serialize)]
pub struct Execution {
    /// The Kubernetes user the change was sent as (`system:serviceaccount:<namespace>:<name>`).
    pub executor_account: String,
    /// The API server's HTTP status for the call.
    pub api_status: u16,
    /// The object's `metadata.resourceVersion` in the answer, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// The object's `metadata.generation` in the answer, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The object as the API server stored it (its answer to the change); not recorded here, the
    /// verification records what it checked of it.
    #[serde(skip)]
    pub(crate) answer: Option<Value>,
}

impl Executor {
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
}

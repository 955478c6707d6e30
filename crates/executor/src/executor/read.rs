//! Reads: GET and LIST as the namespace's reader account, Secrets as metadata only unless revealed.

use kube::api::{GetParams, ListParams};
use serde::Serialize;
use serde_json::Value;

use super::Executor;
use crate::action::{Access, Action, ActionType, Operation, ResourceKind};
use crate::diff;
use crate::error::ExecError;
use crate::guardrails::Scope;
use crate::kube::CallContext;

/// What a GET or LIST returned.
#[derive(Debug, Clone, Serialize)]
pub struct ReadResult {
    /// The Kubernetes user the read was made as (`system:serviceaccount:<namespace>:<name>`).
    pub executor_account: String,
    /// The API server's HTTP status for the call.
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

impl Executor {
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
}

/// Drops `managedFields` from what a read returns: bookkeeping of the API server, not the object.
fn tidy(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

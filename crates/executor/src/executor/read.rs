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
    /// GET: the object; a read as a `Table` (GET or LIST): the API server's `Table`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    /// LIST: the objects of this page (as a `Table`: its rows, also in `object`).
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
        let (http_request, table) = self.read_request(action).await?;
        let metadata_only = self.redact(action.kind);
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
        if table {
            // Only a `Table` is redacted row by row: any other answer (an object, a list) could carry a Secret's
            // data, so it fails the read rather than pass through.
            check_table(&body)?;
            result.items = self.table_rows(action, &mut body);
            result.continue_token = continue_token(&body);
            result.object = Some(body);
        } else if action.action_type == ActionType::List {
            result.continue_token = continue_token(&body);
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

impl Executor {
    /// The request a read sends, and whether it asks for the API server's `Table`.
    async fn read_request(&self, action: &Action) -> Result<(http::Request<Vec<u8>>, bool), ExecError> {
        let path = self.kube.resource(action.kind).await?;
        let request = path.request(action.namespace.as_deref());
        let metadata_only = self.redact(action.kind);
        let (http_request, table) = match (&action.operation, &action.name) {
            (Operation::Get { table: true }, Some(name)) => (request.get(name, &GetParams::default()), true),
            (Operation::Get { .. }, Some(name)) if metadata_only => {
                (request.get_metadata(name, &GetParams::default()), false)
            }
            (Operation::Get { .. }, Some(name)) => (request.get(name, &GetParams::default()), false),
            (
                Operation::List {
                    table,
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
                let request = if metadata_only && !table {
                    request.list_metadata(&params)
                } else {
                    request.list(&params)
                };
                (request, *table)
            }
            _ => return Err(ExecError::client("GET needs a resource name")),
        };
        let mut http_request = http_request.map_err(|e| ExecError::client(e.to_string()))?;
        if table {
            // The rows carry the objects' metadata only (the API server's default for tables).
            http_request
                .headers_mut()
                .insert(http::header::ACCEPT, http::HeaderValue::from_static(TABLE_ACCEPT));
        }
        Ok((http_request, table))
    }

    /// A `Table`'s rows (their objects redacted like any read: no managed fields, Secrets as metadata), and
    /// for Namespaces only the rows the guardrails let through.
    fn table_rows(&self, action: &Action, table: &mut Value) -> Option<Vec<Value>> {
        let metadata_only = self.redact(action.kind);
        let rows = table.get_mut("rows").and_then(Value::as_array_mut)?;
        for row in rows.iter_mut() {
            if let Some(object) = row.get_mut("object") {
                tidy(object);
                if metadata_only {
                    diff::redact_secret(object);
                }
            }
        }
        if action.kind == ResourceKind::Namespace {
            rows.retain(|row| {
                let name = row
                    .pointer("/object/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.guardrails.check_namespace(name).is_ok()
            });
        }
        (action.action_type == ActionType::List).then(|| rows.clone())
    }
}

/// What a read asks for when it wants the API server's `Table` (as kubectl does for `get`).
pub(crate) const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// Whether an answer to a read that asked for a `Table` is one (`kind: Table`, `apiVersion: meta.k8s.io/v1`).
fn check_table(body: &Value) -> Result<(), ExecError> {
    let kind = body.get("kind").and_then(Value::as_str);
    let api_version = body.get("apiVersion").and_then(Value::as_str);
    match (kind, api_version) {
        (Some("Table"), Some("meta.k8s.io/v1")) => Ok(()),
        _ => Err(ExecError::client(format!(
            "the Kubernetes API answered a Table request with kind {} apiVersion {}, not a meta.k8s.io/v1 Table",
            kind.unwrap_or("(none)"),
            api_version.unwrap_or("(none)")
        ))),
    }
}

/// A list's continue token, if there are more pages.
fn continue_token(list: &Value) -> Option<String> {
    list.pointer("/metadata/continue")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// Drops `managedFields` from what a read returns: bookkeeping of the API server, not the object.
fn tidy(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_table_answers_a_table_read() {
        assert!(check_table(&json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "rows": []})).is_ok());
        for body in [
            json!({"kind": "Secret", "apiVersion": "v1", "data": {"k": "dg=="}}),
            json!({"kind": "SecretList", "apiVersion": "v1", "items": []}),
            json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1beta1", "rows": []}),
            json!({"rows": []}),
        ] {
            let error = check_table(&body).unwrap_err();
            assert_eq!(error.code(), "client_error", "{body}");
        }
    }
}

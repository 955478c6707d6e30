//! Watches (`kubectl get -w`, `kubectl rollout status`): the API server's event stream of a LIST the gateway
//! has recorded, as the namespace's reader account, for a bounded time.
//!
//! The watch is the read of an action that has run the pipeline (a LIST, recorded like any read): the call
//! carries that action's id and `Audit-ID`, checks the guardrails again, and lasts at most the caller's
//! `timeoutSeconds`, capped by [`ExecutorOptions::max_watch`](super::ExecutorOptions::max_watch). The stream
//! ends when the API server ends it, when the time is up, or when the caller stops reading it (dropping it
//! closes the connection to the API server).

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use kube::api::WatchParams;

use super::Executor;
use super::read::TABLE_ACCEPT;
use crate::action::{Access, Action, ActionType, Operation, ResourceKind};
use crate::error::ExecError;
use crate::guardrails::{GuardrailViolation, Scope};
use crate::kube::CallContext;

/// What the caller asked of a watch besides the LIST's selectors (Kubernetes' watch query).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchOptions {
    /// Start after this resourceVersion; from the current state (an ADDED event per object) when `None`.
    pub resource_version: Option<String>,
    /// The caller's `timeoutSeconds`; the cap when `None` or longer.
    pub timeout_seconds: Option<u64>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
}

/// The events of a watch as the API server sends them (newline-separated JSON `WatchEvent`s).
pub type WatchEvents = Pin<Box<dyn Stream<Item = Result<Bytes, ExecError>> + Send>>;

/// An open watch.
pub struct Watch {
    /// The Kubernetes user the watch is made as.
    pub executor_account: String,
    /// How long it lasts at most.
    pub lifetime: Duration,
    /// The API server's content type.
    pub content_type: Option<String>,
    /// The events, ending with the watch.
    pub events: WatchEvents,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("executor_account", &self.executor_account)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// Watches the objects of `action` (a LIST the pipeline has run and recorded) as the namespace's reader
    /// account: guardrails first, Secrets and Namespaces never (their events would show what reads withhold).
    pub async fn watch(
        &self,
        context: &CallContext,
        action: &Action,
        scopes: &[Scope],
        options: &WatchOptions,
    ) -> Result<Watch, ExecError> {
        let Operation::List {
            table,
            label_selector,
            field_selector,
            ..
        } = &action.operation
        else {
            return Err(ExecError::client(format!(
                "only a LIST can be watched, not {}",
                action.action_type
            )));
        };
        if matches!(action.kind, ResourceKind::Secret | ResourceKind::Namespace) {
            return Err(ExecError::Guardrail(GuardrailViolation {
                rule: "watch",
                message: format!(
                    "{} cannot be watched through DocketOps (list them instead)",
                    action.kind
                ),
            }));
        }
        debug_assert_eq!(action.action_type, ActionType::List);
        self.check(action, scopes)?;
        let lifetime = options
            .timeout_seconds
            .map_or(self.options.max_watch, Duration::from_secs)
            .min(self.options.max_watch);
        let params = WatchParams {
            label_selector: label_selector.clone(),
            field_selector: field_selector.clone(),
            timeout: Some(u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX).max(1)),
            bookmarks: options.bookmarks,
            ..WatchParams::default()
        };
        let path = self.kube.resource(action.kind).await?;
        let request = path.request(action.namespace.as_deref());
        let version = options.resource_version.as_deref().unwrap_or_default();
        let mut http_request = request
            .watch(&params, version)
            .map_err(|e| ExecError::client(e.to_string()))?;
        if *table {
            http_request
                .headers_mut()
                .insert(http::header::ACCEPT, http::HeaderValue::from_static(TABLE_ACCEPT));
        }
        let account = self.accounts.executor(action.namespace.as_deref(), Access::Read);
        let (_, content_type, body) = self.kube.open_stream(http_request, &account, context).await?;
        // The API server ends the watch after `timeoutSeconds`; the deadline holds even if it does not.
        let deadline = tokio::time::sleep(lifetime + Duration::from_secs(5));
        let events = body
            .into_data_stream()
            .map_err(ExecError::from_kube)
            .take_until(deadline);
        Ok(Watch {
            executor_account: account.username(),
            lifetime,
            content_type,
            events: Box::pin(events),
        })
    }
}

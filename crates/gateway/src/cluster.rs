//! What the gateway needs of a Kubernetes cluster, as a trait: the executor is the real one; a fake
//! (`testing::FakeCluster`) stands in for tests of the gateway's own rules that need no API server.
//!
//! The methods are the executor's, one for one; the trait adds nothing, so the pipeline reads the same
//! whichever stands behind it.

use async_trait::async_trait;
use executor::inspect::{Inspection, Intent};
use executor::{
    Accounts, Action, CallContext, ExecError, Execution, Executor, Guardrails, Preview, ReadResult, Scope,
    Verification, Watch, WatchOptions,
};

/// A governed cluster (see the executor for what each step promises).
#[async_trait]
pub trait Cluster: Send + Sync + 'static {
    /// The cluster's configured name.
    fn name(&self) -> &str;
    /// The guardrails every action on this cluster passes first.
    fn guardrails(&self) -> &Guardrails;
    /// The executor accounts whose rights an action uses (for judging the API server's audit events).
    fn accounts(&self) -> &Accounts;
    /// Guardrails and scopes, before any Kubernetes call.
    fn check(&self, action: &Action, scopes: &[Scope]) -> Result<(), ExecError>;
    /// GET or LIST.
    async fn read(&self, context: &CallContext, action: &Action, scopes: &[Scope]) -> Result<ReadResult, ExecError>;
    /// The event stream of a LIST the pipeline has run (kubectl's watches); none without an API server.
    async fn watch(
        &self,
        _context: &CallContext,
        action: &Action,
        _scopes: &[Scope],
        _options: &WatchOptions,
    ) -> Result<Watch, ExecError> {
        Err(ExecError::Client {
            message: format!("{} cannot be watched on this cluster", action.kind),
        })
    }
    /// The live object and the server-side dry-run of the change.
    async fn preview(&self, context: &CallContext, action: &Action, scopes: &[Scope]) -> Result<Preview, ExecError>;
    /// Sends exactly the previewed request.
    async fn execute(&self, context: &CallContext, preview: &Preview) -> Result<Execution, ExecError>;
    /// The verification the change's own answer settles, if it does.
    fn verify_from_answer(&self, preview: &Preview, execution: &Execution) -> Option<Verification>;
    /// Reads the object back (and waits for a rollout) to verify the change.
    async fn verify(&self, context: &CallContext, preview: &Preview) -> Verification;
    /// After an interruption: whether a stored intent took effect.
    async fn inspect(&self, context: &CallContext, action: &Action, intent: &Intent) -> Result<Inspection, ExecError>;
    /// A discovery or OpenAPI document (kubectl's read-only pass-through): status, body, content type.
    async fn discovery(&self, path: &str, accept: Option<&str>) -> Result<(u16, Vec<u8>, Option<String>), ExecError>;
    /// The workloads in a namespace (Deployments, StatefulSets, DaemonSets, CronJobs), counted recently.
    async fn namespace_workloads(&self, context: &CallContext, namespace: &str) -> Result<u64, ExecError>;
}

#[async_trait]
impl Cluster for Executor {
    fn name(&self) -> &str {
        self.cluster()
    }

    fn guardrails(&self) -> &Guardrails {
        Executor::guardrails(self)
    }

    fn accounts(&self) -> &Accounts {
        Executor::accounts(self)
    }

    fn check(&self, action: &Action, scopes: &[Scope]) -> Result<(), ExecError> {
        Executor::check(self, action, scopes)
    }

    async fn read(&self, context: &CallContext, action: &Action, scopes: &[Scope]) -> Result<ReadResult, ExecError> {
        Executor::read(self, context, action, scopes).await
    }

    async fn watch(
        &self,
        context: &CallContext,
        action: &Action,
        scopes: &[Scope],
        options: &WatchOptions,
    ) -> Result<Watch, ExecError> {
        Executor::watch(self, context, action, scopes, options).await
    }

    async fn preview(&self, context: &CallContext, action: &Action, scopes: &[Scope]) -> Result<Preview, ExecError> {
        Executor::preview(self, context, action, scopes).await
    }

    async fn execute(&self, context: &CallContext, preview: &Preview) -> Result<Execution, ExecError> {
        Executor::execute(self, context, preview).await
    }

    fn verify_from_answer(&self, preview: &Preview, execution: &Execution) -> Option<Verification> {
        Executor::verify_from_answer(self, preview, execution)
    }

    async fn verify(&self, context: &CallContext, preview: &Preview) -> Verification {
        Executor::verify(self, context, preview).await
    }

    async fn inspect(&self, context: &CallContext, action: &Action, intent: &Intent) -> Result<Inspection, ExecError> {
        Executor::inspect(self, context, action, intent).await
    }

    async fn discovery(&self, path: &str, accept: Option<&str>) -> Result<(u16, Vec<u8>, Option<String>), ExecError> {
        Executor::discovery(self, path, accept).await
    }

    async fn namespace_workloads(&self, context: &CallContext, namespace: &str) -> Result<u64, ExecError> {
        Executor::namespace_workloads(self, context, namespace).await
    }
}

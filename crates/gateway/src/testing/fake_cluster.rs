//! A cluster in memory: objects by kind, namespace and name; previews computed from them; changes applied
//! and counted, so a test can tell how many times an action reached "the cluster".

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use domain::{ActionType, ResourceKind};
use executor::executor::ObservedIn;
use executor::inspect::{self, Inspection, Intent};
use executor::{
    Accounts, Action, CallContext, ExecError, Execution, Guardrails, Operation, Preview, ReadResult, Scope,
    Verification,
};
use serde_json::{Value, json};

use crate::Cluster;

type ObjectKey = (ResourceKind, Option<String>, String);

/// Work a test runs once, at the next preview: its way to act between an action's preview and its change.
type PreviewHook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The hook slot (closures have no `Debug`).
#[derive(Default)]
struct OnPreview(Mutex<Option<PreviewHook>>);

impl std::fmt::Debug for OnPreview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnPreview")
    }
}

/// A fake cluster: guardrails as configured, objects in memory, every change counted.
#[derive(Debug)]
pub struct FakeCluster {
    name: String,
    guardrails: Guardrails,
    accounts: Accounts,
    objects: Mutex<BTreeMap<ObjectKey, Value>>,
    changes: AtomicU64,
    resource_versions: AtomicU64,
    on_preview: OnPreview,
}

impl FakeCluster {
    /// An empty cluster named `name` with the default guardrails.
    pub fn new(name: &str) -> FakeCluster {
        FakeCluster {
            name: name.to_owned(),
            guardrails: Guardrails::default(),
            accounts: Accounts::default(),
            objects: Mutex::new(BTreeMap::new()),
            changes: AtomicU64::new(0),
            resource_versions: AtomicU64::new(1),
            on_preview: OnPreview::default(),
        }
    }

    /// Runs `hook` once, during the next preview (before its answer), e.g. to freeze a scope while an action
    /// is between its decision's inputs and its change.
    pub fn on_next_preview<F>(&self, hook: impl FnOnce() -> F + Send + 'static)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let hook: PreviewHook = Box::new(move || Box::pin(hook()));
        *self.on_preview.0.lock().expect("hook") = Some(hook);
    }

    /// With a Deployment of `replicas` replicas in `namespace`.
    pub fn with_deployment(self, namespace: &str, name: &str, replicas: u32) -> FakeCluster {
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"), "generation": 1},
            "spec": {"replicas": replicas}});
        self.put(ResourceKind::Deployment, Some(namespace), name, object);
        self
    }

    /// The object as the cluster holds it now.
    pub fn object(&self, kind: ResourceKind, namespace: Option<&str>, name: &str) -> Option<Value> {
        let key = (kind, namespace.map(str::to_owned), name.to_owned());
        self.objects.lock().expect("objects").get(&key).cloned()
    }

    /// How many changes reached the cluster.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    /// Changes `object` behind the gateway's back (as another client would): a new resourceVersion.
    pub fn put(&self, kind: ResourceKind, namespace: Option<&str>, name: &str, mut object: Value) {
        let version = self.resource_versions.fetch_add(1, Ordering::SeqCst).to_string();
        object["metadata"]["resourceVersion"] = json!(version);
        let key = (kind, namespace.map(str::to_owned), name.to_owned());
        self.objects.lock().expect("objects").insert(key, object);
    }

    fn key(action: &Action) -> ObjectKey {
        (
            action.kind,
            action.namespace.clone(),
            action.name.clone().unwrap_or_default(),
        )
    }

    fn not_found(action: &Action) -> ExecError {
        ExecError::Api {
            status: 404,
            reason: "NotFound".into(),
            message: format!("{} not found", action.target()),
        }
    }

    /// What the action would make of `live`; the fake does SCALE, PATCH (a JSON merge patch) and DELETE.
    fn after(action: &Action, live: &Value) -> Result<Value, ExecError> {
        let mut after = live.clone();
        match &action.operation {
            Operation::Scale { replicas } => after["spec"]["replicas"] = json!(replicas),
            Operation::Patch { patch } => merge(&mut after, &Value::Object(patch.clone())),
            Operation::Delete { .. } => return Ok(Value::Null),
            _ => {
                return Err(ExecError::Target(format!(
                    "the fake cluster does not do {}",
                    action.action_type
                )));
            }
        }
        Ok(after)
    }

    fn passed(observed_in: ObservedIn, resource_version: Option<String>) -> Verification {
        Verification {
            passed: true,
            observed_in,
            checks: Vec::new(),
            rollout: None,
            observed_resource_version: resource_version,
            waited_ms: 0,
            error: None,
        }
    }
}

/// RFC 7386 JSON merge patch (the fake's PATCH).
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (key, value) in patch {
        if value.is_null() {
            target.as_object_mut().map(|t| t.remove(key));
        } else {
            merge(&mut target[key.as_str()], value);
        }
    }
}

#[async_trait]
impl Cluster for FakeCluster {
    fn name(&self) -> &str {
        &self.name
    }

    fn guardrails(&self) -> &Guardrails {
        &self.guardrails
    }

    fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    fn check(&self, action: &Action, scopes: &[Scope]) -> Result<(), ExecError> {
        let here: Vec<Scope> = scopes
            .iter()
            .filter(|s| s.covers_cluster(&self.name))
            .cloned()
            .collect();
        self.guardrails.check(action, &here).map_err(ExecError::Guardrail)
    }

    async fn read(&self, _: &CallContext, action: &Action, scopes: &[Scope]) -> Result<ReadResult, ExecError> {
        self.check(action, scopes)?;
        let objects = self.objects.lock().expect("objects");
        let (object, items) = match action.action_type {
            ActionType::List => {
                let items = objects
                    .iter()
                    .filter(|((kind, ns, _), _)| *kind == action.kind && *ns == action.namespace)
                    .map(|(_, object)| object.clone())
                    .collect();
                (None, Some(items))
            }
            _ => (
                Some(
                    objects
                        .get(&Self::key(action))
                        .cloned()
                        .ok_or_else(|| Self::not_found(action))?,
                ),
                None,
            ),
        };
        Ok(ReadResult {
            executor_account: "system:serviceaccount:docketops:fake-reader".into(),
            api_status: 200,
            object,
            items,
            continue_token: None,
            secret_data_withheld: false,
        })
    }

    async fn preview(&self, _: &CallContext, action: &Action, scopes: &[Scope]) -> Result<Preview, ExecError> {
        self.check(action, scopes)?;
        let hook = self.on_preview.0.lock().expect("hook").take();
        if let Some(hook) = hook {
            hook().await;
        }
        let live = self.object(
            action.kind,
            action.namespace.as_deref(),
            action.name.as_deref().unwrap_or_default(),
        );
        let live = live.ok_or_else(|| Self::not_found(action))?;
        let after = Self::after(action, &live)?;
        Ok(Preview::fake(action, Some(&live), after))
    }

    async fn execute(&self, _: &CallContext, preview: &Preview) -> Result<Execution, ExecError> {
        let action = preview.action();
        let key = Self::key(action);
        let live = self.objects.lock().expect("objects").get(&key).cloned();
        // The precondition the executor sends: the previewed resourceVersion.
        let current = live
            .as_ref()
            .and_then(|o| o["metadata"]["resourceVersion"].as_str().map(str::to_owned));
        if current != preview.live.as_ref().map(|l| l.resource_version.clone()) {
            return Err(ExecError::Api {
                status: 409,
                reason: "Conflict".into(),
                message: "the object has been modified".into(),
            });
        }
        self.changes.fetch_add(1, Ordering::SeqCst);
        if preview.dry_run_object.is_null() {
            self.objects.lock().expect("objects").remove(&key);
            return Ok(Execution::fake(preview, None));
        }
        self.put(
            action.kind,
            action.namespace.as_deref(),
            &key.2,
            preview.dry_run_object.clone(),
        );
        Ok(Execution::fake(
            preview,
            self.object(action.kind, action.namespace.as_deref(), &key.2),
        ))
    }

    fn verify_from_answer(&self, _: &Preview, execution: &Execution) -> Option<Verification> {
        Some(Self::passed(ObservedIn::Answer, execution.resource_version.clone()))
    }

    async fn verify(&self, _: &CallContext, _: &Preview) -> Verification {
        Self::passed(ObservedIn::ReadBack, None)
    }

    async fn inspect(&self, _: &CallContext, action: &Action, intent: &Intent) -> Result<Inspection, ExecError> {
        let object = self.object(
            action.kind,
            action.namespace.as_deref(),
            action.name.as_deref().unwrap_or_default(),
        );
        Ok(inspect::judge(action, intent, object.as_ref()))
    }

    async fn discovery(&self, path: &str, _: Option<&str>) -> Result<(u16, Vec<u8>, Option<String>), ExecError> {
        Err(ExecError::Target(format!(
            "the fake cluster serves no discovery ({path})"
        )))
    }

    async fn namespace_workloads(&self, _: &CallContext, namespace: &str) -> Result<u64, ExecError> {
        let objects = self.objects.lock().expect("objects");
        let of_namespace = |(kind, ns, _): &&ObjectKey| kind.counts_as_workload() && ns.as_deref() == Some(namespace);
        Ok(objects.keys().filter(of_namespace).count() as u64)
    }
}

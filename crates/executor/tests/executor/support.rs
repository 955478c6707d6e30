//! A world per test on the real API server of `scripts/kube-testenv`: fresh namespaces, the executor's RBAC
//! applied from `Accounts::manifests`, a token for the gateway's own service account (TokenRequest), and an
//! executor that connects through a kubeconfig written for that token. Fixtures are made by the admin.

use std::path::{Path, PathBuf};
use std::time::Duration;

use executor::guardrails::Guardrails;
use executor::{
    Access, Action, ActionRequest, CallContext, Executor, ExecutorOptions, KubeConnection, KubeSource, Scope,
};
use kube::api::{Patch, PatchParams};
use rand::Rng;
use serde_json::{Value, json};

/// What `eval "$(scripts/kube-testenv env)"` exports.
pub struct TestEnv {
    pub kubeconfig: PathBuf,
    pub server: String,
    pub ca_file: PathBuf,
    pub audit_log: PathBuf,
}

pub fn test_env() -> TestEnv {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set. These tests need the real API server of the test environment: \
                 run `scripts/kube-testenv up && eval \"$(scripts/kube-testenv env)\"` (scripts/test does this)"
            )
        })
    };
    TestEnv {
        kubeconfig: var("KUBECONFIG").into(),
        server: var("DOCKETOPS_TEST_KUBE_SERVER"),
        ca_file: var("DOCKETOPS_TEST_KUBE_CA_FILE").into(),
        audit_log: var("DOCKETOPS_TEST_KUBE_AUDIT_LOG").into(),
    }
}

pub fn suffix() -> String {
    let mut rng = rand::thread_rng();
    (0..6).map(|_| (b'a' + rng.gen_range(0..26)) as char).collect()
}

/// The cluster administrator (group system:masters): fixtures and checks behind the executor's back.
#[derive(Clone)]
pub struct Admin {
    pub client: kube::Client,
}

impl Admin {
    pub async fn connect() -> Admin {
        let env = test_env();
        let kubeconfig = kube::config::Kubeconfig::read_from(&env.kubeconfig).expect("read the test kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        Admin {
            client: kube::Client::try_from(config).unwrap(),
        }
    }

    /// The collection path of a manifest's kind (every kind used here has the plural `<kind>s`).
    fn collection(api_version: &str, kind: &str, namespace: Option<&str>) -> String {
        let root = if api_version.contains('/') { "apis" } else { "api" };
        let plural = format!("{}s", kind.to_lowercase());
        match namespace {
            Some(ns) => format!("/{root}/{api_version}/namespaces/{ns}/{plural}"),
            None => format!("/{root}/{api_version}/{plural}"),
        }
    }

    pub fn path_of(manifest: &Value) -> (String, String) {
        let api_version = manifest["apiVersion"].as_str().unwrap();
        let kind = manifest["kind"].as_str().unwrap();
        let namespace = manifest["metadata"]["namespace"].as_str();
        let name = manifest["metadata"]["name"].as_str().unwrap().to_owned();
        (Self::collection(api_version, kind, namespace), name)
    }

    /// Server-side apply as the admin.
    pub async fn apply(&self, manifest: &Value) -> Value {
        let (collection, name) = Self::path_of(manifest);
        let request = kube::core::Request::new(collection)
            .patch(
                &name,
                &PatchParams::apply("docketops-tests").force(),
                &Patch::Apply(manifest),
            )
            .unwrap();
        self.client
            .request::<Value>(request)
            .await
            .unwrap_or_else(|e| panic!("admin apply of {manifest}: {e}"))
    }

    pub async fn get(&self, path: &str) -> Result<Value, kube::Error> {
        let request = http::Request::get(path).body(Vec::new()).unwrap();
        self.client.request::<Value>(request).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Value {
        let request = http::Request::post(path)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
            .unwrap();
        self.client
            .request::<Value>(request)
            .await
            .unwrap_or_else(|e| panic!("admin POST {path}: {e}"))
    }

    pub async fn merge_patch(&self, path: &str, body: &Value) -> Value {
        let request = http::Request::patch(path)
            .header("content-type", "application/merge-patch+json")
            .body(serde_json::to_vec(body).unwrap())
            .unwrap();
        self.client
            .request::<Value>(request)
            .await
            .unwrap_or_else(|e| panic!("admin PATCH {path}: {e}"))
    }

    /// The API version the server prefers for `kind` in `group` (CronJob is batch/v1beta1 on 1.20).
    pub async fn served_version(&self, group: &str, kind: &str) -> String {
        let group_doc = self.get(&format!("/apis/{group}")).await.unwrap();
        let versions: Vec<String> = group_doc["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["groupVersion"].as_str().unwrap().to_owned())
            .collect();
        for group_version in versions {
            let resources = self.get(&format!("/apis/{group_version}")).await.unwrap();
            if resources["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["kind"] == kind)
            {
                return group_version;
            }
        }
        panic!("{kind} is not served in {group}")
    }
}

/// Fresh namespaces and accounts for one test.
pub struct World {
    pub admin: Admin,
    pub release: String,
    pub gateway_namespace: String,
    /// Governed: the executor's RBAC exists here.
    pub app: String,
    /// Exists, but no executor RBAC (not governed).
    pub other: String,
    pub gateway_kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl World {
    pub async fn new() -> World {
        let env = test_env();
        let admin = Admin::connect().await;
        let id = suffix();
        let world_dir = tempfile::tempdir().unwrap();
        let release = format!("t{id}");
        let gateway_namespace = format!("gw-{id}");
        let app = format!("app-{id}");
        let other = format!("other-{id}");
        for ns in [&gateway_namespace, &app, &other] {
            admin
                .apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
                .await;
            // No controller-manager here to create each namespace's default account, which Pods need.
            admin
                .apply(&json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}}))
                .await;
        }
        let accounts = executor::Accounts {
            release: release.clone(),
            gateway_namespace: gateway_namespace.clone(),
        };
        for manifest in accounts.manifests(std::slice::from_ref(&app)) {
            admin.apply(&manifest).await;
        }
        let gateway = accounts.gateway();
        let token_request = admin
            .post(
                &format!(
                    "/api/v1/namespaces/{}/serviceaccounts/{}/token",
                    gateway.namespace, gateway.name
                ),
                &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                        "spec": {"expirationSeconds": 3600}}),
            )
            .await;
        let token = token_request["status"]["token"].as_str().expect("a token").to_owned();
        let gateway_kubeconfig = world_dir.path().join("gateway.kubeconfig");
        write_kubeconfig(&gateway_kubeconfig, &env.server, &env.ca_file, &token);
        World {
            admin,
            release,
            gateway_namespace,
            app,
            other,
            gateway_kubeconfig,
            _dir: world_dir,
        }
    }

    pub fn guardrails(&self) -> Guardrails {
        Guardrails {
            gateway_namespace: self.gateway_namespace.clone(),
            ..Guardrails::default()
        }
    }

    pub fn options() -> ExecutorOptions {
        ExecutorOptions {
            call_timeout: Duration::from_secs(20),
            verify_timeout: Duration::from_secs(3),
            wait_for_rollout: false,
            poll_interval: Duration::from_millis(200),
            max_watch: Duration::from_secs(300),
        }
    }

    pub async fn executor(&self) -> Executor {
        self.executor_with(self.guardrails(), Self::options()).await
    }

    pub async fn executor_with(&self, guardrails: Guardrails, options: ExecutorOptions) -> Executor {
        let source = KubeSource::Kubeconfig {
            path: Some(self.gateway_kubeconfig.clone()),
            context: Some("gateway".into()),
        };
        let connection = KubeConnection::connect(&source, options.call_timeout).await.unwrap();
        Executor::new(connection, guardrails, &self.release, options)
    }

    /// A Deployment in the governed namespace, created by the admin.
    pub async fn deployment(&self, name: &str, replicas: u32) -> Value {
        self.admin.apply(&deployment_manifest(&self.app, name, replicas)).await
    }

    pub fn deployment_path(&self, name: &str) -> String {
        format!("/apis/apps/v1/namespaces/{}/deployments/{name}", self.app)
    }
}

pub fn deployment_manifest(namespace: &str, name: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "registry.example/web:1.0"},
                                        {"name": "sidecar", "image": "registry.example/proxy:1.0"}]}
            }
        }
    })
}

fn write_kubeconfig(path: &Path, server: &str, ca_file: &Path, token: &str) {
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority": ca_file}}],
        "users": [{"name": "gateway", "user": {"token": token}}],
        "contexts": [{"name": "gateway", "context": {"cluster": "test", "user": "gateway"}}],
        "current-context": "gateway"
    });
    std::fs::write(path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

/// A call context with fresh ids, so each test's calls can be found in the audit log.
pub fn context() -> CallContext {
    let id = suffix();
    CallContext {
        identity: format!("agt_test{id}"),
        action_id: format!("act_test{id}"),
        audit_id: format!("evt_test{id}"),
    }
}

pub fn action(value: Value) -> Action {
    Action::from_request(&serde_json::from_value::<ActionRequest>(value).unwrap()).unwrap()
}

pub fn all_mutate() -> Vec<Scope> {
    vec![Scope::new(&["*"], Access::Mutate, &["*"])]
}

/// Audit events whose auditID is `audit_id` (the audit log is written within about a second).
pub async fn audit_events(audit_id: &str) -> Vec<Value> {
    let log = test_env().audit_log;
    let mut found = Vec::new();
    for _ in 0..20 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        found = text
            .lines()
            .filter(|line| line.contains(audit_id))
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|event| event["auditID"] == audit_id)
            .collect();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    found
}

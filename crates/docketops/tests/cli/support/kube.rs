//! The real Kubernetes API servers of `scripts/kube-testenv`, and fresh namespaces on them with the
//! executor's RBAC applied.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::BIN;

/// The real API server of `scripts/kube-testenv` (exported by `scripts/kube-testenv env`).
pub(crate) struct KubeTestEnv {
    pub(crate) server: String,
    pub(crate) token: String,
    pub(crate) ca_file: PathBuf,
}

/// The second API server of the test environment ("cluster B"; same admin token).
pub(crate) fn kube_test_env_b() -> KubeTestEnv {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run `scripts/kube-testenv up && eval \"$(scripts/kube-testenv env)\"` (scripts/test does)")
        })
    };
    KubeTestEnv {
        server: var("DOCKETOPS_TEST_KUBE_B_SERVER"),
        token: var("DOCKETOPS_TEST_KUBE_TOKEN"),
        ca_file: var("DOCKETOPS_TEST_KUBE_B_CA_FILE").into(),
    }
}

pub(crate) fn kube_test_env() -> KubeTestEnv {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run `scripts/kube-testenv up && eval \"$(scripts/kube-testenv env)\"` (scripts/test does)")
        })
    };
    KubeTestEnv {
        server: var("DOCKETOPS_TEST_KUBE_SERVER"),
        token: var("DOCKETOPS_TEST_KUBE_TOKEN"),
        ca_file: var("DOCKETOPS_TEST_KUBE_CA_FILE").into(),
    }
}

/// Fresh namespaces on the real API server with the executor's RBAC applied from `docketops kube rbac`,
/// and a kubeconfig holding the gateway service account's own token.
pub(crate) struct KubeWorld {
    pub(crate) env: KubeTestEnv,
    pub(crate) http: reqwest::Client,
    pub(crate) release: String,
    pub(crate) gateway_ns: String,
    pub(crate) app_ns: String,
    pub(crate) other_ns: String,
    pub(crate) kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl KubeWorld {
    pub(crate) async fn new() -> KubeWorld {
        Self::build(kube_test_env(), None).await
    }

    /// The same namespaces, release and gateway namespace as `like`, on another API server.
    pub(crate) async fn mirror(like: &KubeWorld, env: KubeTestEnv) -> KubeWorld {
        Self::build(env, Some(like)).await
    }

    async fn build(env: KubeTestEnv, like: Option<&KubeWorld>) -> KubeWorld {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&env.ca_file).unwrap()).unwrap();
        let http = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
        let id = format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % 0xffff_ffff
        );
        let dir = tempfile::tempdir().unwrap();
        let name = |own: String, like: Option<&String>| like.cloned().unwrap_or(own);
        let mut world = KubeWorld {
            release: name(format!("c{id}"), like.map(|w| &w.release)),
            gateway_ns: name(format!("gw-{id}"), like.map(|w| &w.gateway_ns)),
            app_ns: name(format!("app-{id}"), like.map(|w| &w.app_ns)),
            other_ns: name(format!("other-{id}"), like.map(|w| &w.other_ns)),
            kubeconfig: dir.path().join("gateway.kubeconfig"),
            env,
            http,
            _dir: dir,
        };
        for ns in [world.gateway_ns.clone(), world.app_ns.clone(), world.other_ns.clone()] {
            world
                .admin_send(
                    reqwest::Method::POST,
                    "/api/v1/namespaces",
                    &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                )
                .await;
        }
        let out = Command::new(BIN)
            .args([
                "kube",
                "rbac",
                "-n",
                &world.app_ns,
                "--release",
                &world.release,
                "--gateway-namespace",
                &world.gateway_ns,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(list["kind"], "List");
        for item in list["items"].as_array().unwrap() {
            world.admin_apply(item).await;
        }
        let token = world
            .admin_send(
                reqwest::Method::POST,
                &format!(
                    "/api/v1/namespaces/{}/serviceaccounts/{}-gateway/token",
                    world.gateway_ns, world.release
                ),
                &serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
            )
            .await;
        std::fs::write(
            &world.kubeconfig,
            serde_json::json!({"apiVersion": "v1", "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": world.env.server, "certificate-authority": world.env.ca_file}}],
                "users": [{"name": "gateway", "user": {"token": token["status"]["token"]}}],
                "contexts": [{"name": "gateway", "context": {"cluster": "c", "user": "gateway"}}],
                "current-context": "gateway"})
            .to_string(),
        )
        .unwrap();
        world.kubeconfig = world.kubeconfig.clone();
        world
    }

    async fn admin_send(&self, method: reqwest::Method, path: &str, body: &Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.env.server))
            .bearer_auth(&self.env.token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    pub(crate) async fn admin_get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.env.server))
            .bearer_auth(&self.env.token)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    /// Server-side apply as the cluster admin, as `kubectl apply --server-side` would.
    pub(crate) async fn admin_apply(&self, item: &Value) {
        let api_version = item["apiVersion"].as_str().unwrap();
        let root = if api_version.contains('/') { "apis" } else { "api" };
        let plural = format!("{}s", item["kind"].as_str().unwrap().to_lowercase());
        let name = item["metadata"]["name"].as_str().unwrap();
        let path = match item["metadata"]["namespace"].as_str() {
            Some(ns) => format!("/{root}/{api_version}/namespaces/{ns}/{plural}/{name}"),
            None => format!("/{root}/{api_version}/{plural}/{name}"),
        };
        let response = self
            .http
            .patch(format!("{}{path}?fieldManager=tests&force=true", self.env.server))
            .bearer_auth(&self.env.token)
            .header("content-type", "application/apply-patch+yaml")
            .body(item.to_string())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.text().await.unwrap()
        );
    }

    /// A Deployment `name` in the governed namespace, made by the admin.
    pub(crate) async fn deployment(&self, name: &str, replicas: u32) {
        self.admin_apply(&serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.app_ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]}}}}))
            .await;
    }

    /// ConfigMaps `cm-0` … `cm-{n-1}` in the governed namespace, made by the admin.
    pub(crate) async fn config_maps(&self, n: usize) {
        for n in 0..n {
            self.admin_apply(&serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm-{n}"), "namespace": self.app_ns}, "data": {"n": n.to_string()}}))
                .await;
        }
    }

    /// [`serve_args`](Self::serve_args) with `--config` a file `name` in `dir` holding `toml`.
    pub(crate) fn serve_args_with_config(&self, dir: &std::path::Path, name: &str, toml: &str) -> Vec<String> {
        let config = dir.join(name);
        std::fs::write(&config, toml).unwrap();
        let mut args = self.serve_args();
        args.extend(["--config".to_owned(), config.display().to_string()]);
        args
    }

    pub(crate) fn serve_args(&self) -> Vec<String> {
        vec![
            "--kubeconfig".into(),
            self.kubeconfig.display().to_string(),
            "--release".into(),
            self.release.clone(),
            "--gateway-namespace".into(),
            self.gateway_ns.clone(),
            // No controllers run in the test API server: check the spec, do not wait for rollouts.
            "--rollout-timeout".into(),
            "0".into(),
        ]
    }
}

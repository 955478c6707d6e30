//! The kubectl-compatible proxy at `/k8s/…`: a real `kubectl` (scripts/ensure-kubectl) against the gateway
//! over HTTPS, with an agent's API key as its token. Reads, scale, rollout restart, set image, apply
//! (client- and server-side) and delete each run the pipeline and appear in the ledger; a guardrail denial and
//! a pending approval come back as readable errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use super::{KubeWorld, Server, TestApp, stdout};

/// The kubectl to run: DOCKETOPS_TEST_KUBECTL (a path) if set, else `kubectl` on PATH, installed by
/// scripts/ensure-kubectl when missing.
pub(super) fn kubectl_binary() -> String {
    if let Ok(path) = std::env::var("DOCKETOPS_TEST_KUBECTL") {
        return path;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-kubectl");
    let status = Command::new(script).status().unwrap();
    assert!(status.success(), "scripts/ensure-kubectl failed");
    "kubectl".to_owned()
}

pub(super) struct Kubectl {
    pub(super) binary: String,
    pub(super) kubeconfig: PathBuf,
    pub(super) dir: PathBuf,
}

impl Kubectl {
    pub(super) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.dir)
            .env("KUBECONFIG", &self.kubeconfig)
            .args(["--cache-dir", self.dir.join("cache").to_str().unwrap()])
            .args(args);
        command
    }

    pub(super) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub(super) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    }

    /// Runs and asserts failure; returns stderr.
    pub(super) fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "kubectl {args:?} should fail: {}", stdout(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// A gateway over HTTPS on the test API server, with an agent (mutate scope on the app namespace), an
/// auditor and an approver, and a kubectl configured with the agent's key.
pub(super) struct Proxy {
    pub(super) app: TestApp,
    pub(super) world: KubeWorld,
    pub(super) server: Server,
    pub(super) http: reqwest::Client,
    pub(super) kubectl: Kubectl,
    pub(super) dir: PathBuf,
    pub(super) agent: String,
    pub(super) agent_id: String,
    pub(super) auditor: String,
    pub(super) approver: String,
}

impl Proxy {
    pub(super) async fn start(test: &str) -> Proxy {
        let binary = kubectl_binary();
        let app = TestApp::new("sqlite", test).await;
        let world = KubeWorld::new().await;
        let ns = world.app_ns.clone();
        let (cert, key) = super::self_signed_certificate(app.dir.path());
        // Deleting a workload stays HIGH risk (an approval); other deletes are MEDIUM here, so a ConfigMap
        // delete runs at once.
        let config = app.dir.path().join("kubectl-risk.toml");
        std::fs::write(
            &config,
            "[[risk.rules]]\nid = \"delete-workload\"\nlevel = \"HIGH\"\nreason = \"deletes a workload\"\n\
             action_types = [\"DELETE\"]\nkinds = [\"Deployment\", \"StatefulSet\", \"DaemonSet\"]\n",
        )
        .unwrap();
        let mut args = world.serve_args();
        args.extend(["--config".into(), config.display().to_string()]);
        args.extend([
            "--tls-cert".into(),
            cert.display().to_string(),
            "--tls-key".into(),
            key.display().to_string(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Server::start_with(&app, &args);
        assert!(server.base.starts_with("https://"), "{}", server.base);
        let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
        let http = reqwest::Client::builder().add_root_certificate(root).build().unwrap();
        let dir = app.dir.path().join("kubectl");
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("config");
        let mut proxy = Proxy {
            kubectl: Kubectl {
                binary,
                kubeconfig: kubeconfig.clone(),
                dir: dir.clone(),
            },
            app,
            world,
            server,
            http,
            dir,
            agent: String::new(),
            agent_id: String::new(),
            auditor: String::new(),
            approver: String::new(),
        };
        let (agent, agent_id) = proxy
            .identity(json!({"name": "kubectl-bot", "kind": "agent", "roles": ["operator"],
                "scopes": [{"namespaces": [ns], "access": "mutate", "kinds": ["*"]}]}))
            .await;
        (proxy.agent, proxy.agent_id) = (agent, agent_id);
        proxy.auditor = proxy
            .identity(json!({"name": "kubectl-auditor", "kind": "human", "roles": ["auditor"], "scopes": []}))
            .await
            .0;
        proxy.approver = proxy
            .identity(
                json!({"name": "kubectl-approver", "kind": "human", "roles": ["approver"],
                "scopes": [{"namespaces": [ns], "access": "mutate", "kinds": ["*"]}]}),
            )
            .await
            .0;
        std::fs::write(
            &kubeconfig,
            json!({"apiVersion": "v1", "kind": "Config",
                "clusters": [{"name": "docketops", "cluster": {"server": format!("{}/k8s", proxy.server.base),
                    "certificate-authority": cert}}],
                "users": [{"name": "agent", "user": {"token": proxy.agent}}],
                "contexts": [{"name": "docketops", "context": {"cluster": "docketops", "user": "agent", "namespace": ns}}],
                "current-context": "docketops"})
            .to_string(),
        )
        .unwrap();
        proxy
    }

    /// A new identity made by the admin: (API key, id).
    pub(super) async fn identity(&self, body: Value) -> (String, String) {
        let (status, created) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/identities",
                &self.server.admin_key,
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        (
            created["api_key"].as_str().unwrap().to_owned(),
            created["identity"]["id"].as_str().unwrap().to_owned(),
        )
    }

    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.server.base))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap_or(Value::Null))
    }

    /// The agent's actions in the app namespace, newest first (as the auditor sees them).
    pub(super) async fn actions(&self) -> Vec<Value> {
        let path = format!("/api/v1/actions?namespace={}&limit=200", self.world.app_ns);
        let (status, actions) = self.call(reqwest::Method::GET, &path, &self.auditor, None).await;
        assert_eq!(status, 200, "{actions}");
        actions["actions"].as_array().unwrap().clone()
    }

    pub(super) async fn finish(self) {
        let (_, report) = self
            .call(reqwest::Method::GET, "/api/v1/ledger/verify", &self.auditor, None)
            .await;
        assert_eq!(report["valid"], true, "{report}");
        drop(self.server);
        self.app.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_works_through_the_proxy_and_every_mutation_is_governed() {
    let proxy = Proxy::start("kubectl").await;
    let (world, kubectl, dir) = (&proxy.world, &proxy.kubectl, &proxy.dir);
    let (agent, auditor, approver) = (&proxy.agent, &proxy.auditor, &proxy.approver);
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    let live = |path: String| {
        let world = &world;
        async move { world.admin_get(&path).await }
    };
    let deployment_path = format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api");

    // Reads.
    let listed = kubectl.ok(&["get", "deployments"]);
    assert!(listed.contains("web-api"), "{listed}");
    let object: Value = serde_json::from_str(&kubectl.ok(&["get", "deployment", "web-api", "-o", "json"])).unwrap();
    assert_eq!(object["metadata"]["name"], "web-api");
    assert_eq!(object["spec"]["replicas"], 2);
    let described = kubectl.ok(&["describe", "deployment", "web-api"]);
    assert!(
        described.contains("web-api") && described.contains("registry.example/web:1"),
        "{described}"
    );
    let missing = kubectl.fails(&["get", "configmap", "nothing-here"]);
    assert!(
        missing.contains("NotFound") || missing.contains("not found"),
        "{missing}"
    );

    // Mutations, each an action of its own.
    kubectl.ok(&["scale", "deployment", "web-api", "--replicas=4"]);
    assert_eq!(live(deployment_path.clone()).await["spec"]["replicas"], 4);
    kubectl.ok(&["rollout", "restart", "deployment", "web-api"]);
    let restarted = live(deployment_path.clone()).await;
    assert!(
        restarted["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string(),
        "{restarted}"
    );
    kubectl.ok(&["set", "image", "deployment/web-api", "web=registry.example/web:2"]);
    assert_eq!(
        live(deployment_path.clone()).await["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/web:2"
    );
    kubectl.ok(&[
        "patch",
        "deployment",
        "web-api",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":"web"}}}"#,
    ]);
    assert_eq!(live(deployment_path.clone()).await["metadata"]["labels"]["tier"], "web");
    let json_patch = kubectl.fails(&[
        "patch",
        "deployment",
        "web-api",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
    ]);
    assert!(json_patch.contains("JSON patches are not supported"), "{json_patch}");
    let events = kubectl.fails(&["get", "events"]);
    assert!(events.contains("not available through DocketOps"), "{events}");
    let manifest = dir.join("settings.json");
    let config_map = |value: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": ns},
            "data": {"mode": value}})
        .to_string()
    };
    let config_map_path = format!("/api/v1/namespaces/{ns}/configmaps/settings");
    std::fs::write(&manifest, config_map("one")).unwrap();
    let applied = kubectl.ok(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(applied.contains("created"), "{applied}");
    assert_eq!(live(config_map_path.clone()).await["data"]["mode"], "one");
    std::fs::write(&manifest, config_map("two")).unwrap();
    let applied = kubectl.ok(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(applied.contains("configured"), "{applied}");
    assert_eq!(live(config_map_path.clone()).await["data"]["mode"], "two");
    std::fs::write(&manifest, config_map("three")).unwrap();
    kubectl.ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        manifest.to_str().unwrap(),
    ]);
    assert_eq!(live(config_map_path.clone()).await["data"]["mode"], "three");
    let deleted = kubectl.ok(&["delete", "configmap", "settings"]);
    assert!(deleted.contains("deleted"), "{deleted}");
    assert_eq!(live(config_map_path.clone()).await["reason"], "NotFound");

    // Refusals come back readable.
    let refused = kubectl.fails(&["-n", "kube-system", "delete", "configmap", "x"]);
    assert!(
        refused.contains("DocketOps denied DELETE ConfigMap kube-system/x") && refused.contains("act_"),
        "{refused}"
    );
    // Deleting the Deployment is HIGH risk: kubectl gets the action id; it runs once an approver approves.
    let pending = kubectl.fails(&["delete", "deployment", "web-api"]);
    assert!(pending.contains("needs an approval"), "{pending}");
    assert_eq!(
        live(deployment_path.clone()).await["metadata"]["name"],
        "web-api",
        "not deleted before approval"
    );
    let id = pending[pending.find("act_").expect("an action id")..]
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .next()
        .unwrap()
        .to_owned();
    let (status, approved) = proxy
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/approvals/{id}/approve"),
            approver,
            Some(json!({"comment": "ok"})),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    let (_, done) = proxy
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/actions/{id}?wait=60"),
            auditor,
            None,
        )
        .await;
    assert_eq!(done["action"]["status"], "COMPLETED", "{done}");
    assert_eq!(live(deployment_path.clone()).await["reason"], "NotFound");

    // Discovery is served read-only; the API key is required; writes to discovery are refused.
    let (status, resources) = proxy.call(reqwest::Method::GET, "/k8s/apis/apps/v1", agent, None).await;
    assert_eq!(
        (status, resources["kind"].as_str()),
        (200, Some("APIResourceList")),
        "{resources}"
    );
    let (status, refused) = proxy
        .call(reqwest::Method::POST, "/k8s/api/v1", agent, Some(json!({})))
        .await;
    assert_eq!((status, refused["kind"].as_str()), (405, Some("Status")), "{refused}");
    let (status, refused) = proxy
        .call(reqwest::Method::GET, "/k8s/api/v1/namespaces/x/pods", "dkt_wrong", None)
        .await;
    assert_eq!(
        (status, refused["reason"].as_str()),
        (401, Some("Unauthorized")),
        "{refused}"
    );
    let (status, refused) = proxy
        .call(
            reqwest::Method::GET,
            "/k8s/apis/rbac.authorization.k8s.io/v1/clusterroles",
            agent,
            None,
        )
        .await;
    assert_eq!(
        (status, refused["reason"].as_str()),
        (404, Some("NotFound")),
        "{refused}"
    );

    // Every mutation is in the ledger, as the agent's action.
    let (status, actions) = proxy
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/actions?namespace={ns}&limit=200"),
            auditor,
            None,
        )
        .await;
    assert_eq!(status, 200, "{actions}");
    let actions = actions["actions"].as_array().unwrap();
    let done = |action_type: &str, name: &str| {
        actions
            .iter()
            .any(|a| a["action_type"] == action_type && a["resource_name"] == name && a["status"] == "COMPLETED")
    };
    for (action_type, name) in [
        ("SCALE", "web-api"),
        ("RESTART", "web-api"),
        ("SET_IMAGE", "web-api"),
        ("PATCH", "web-api"),
        ("APPLY", "settings"),
        ("DELETE", "settings"),
        ("DELETE", "web-api"),
        ("GET", "web-api"),
        ("LIST", ""),
    ] {
        let found = if name.is_empty() {
            actions
                .iter()
                .any(|a| a["action_type"] == action_type && a["status"] == "COMPLETED")
        } else {
            done(action_type, name)
        };
        assert!(found, "{action_type} {name} is not in the ledger: {actions:?}");
    }
    let applies = actions
        .iter()
        .filter(|a| a["action_type"] == "APPLY" && a["status"] == "COMPLETED")
        .count();
    assert!(
        applies >= 3,
        "create, client-side apply and server-side apply: {applies}"
    );
    proxy.finish().await;
}

/// `kubectl --dry-run=server` through the proxy: kubectl prints its "(server dry run)" answer, the API server's
/// objects stay exactly as they were (same resourceVersion, read with the admin's credentials), and each
/// mutation is a dry-run action in the ledger (`action.previewed`, never `action.executed` or
/// `approval.requested`), even a workload delete that would need an approval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_dry_runs_are_previewed_and_change_nothing() {
    let proxy = Proxy::start("kubectl_dry_run").await;
    let (world, kubectl) = (&proxy.world, &proxy.kubectl);
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    world
        .admin_apply(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": ns}, "data": {"mode": "one"}}))
        .await;
    let deployment_path = format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api");
    let config_map_path = format!("/api/v1/namespaces/{ns}/configmaps/settings");
    let deployment_before = world.admin_get(&deployment_path).await;
    let config_map_before = world.admin_get(&config_map_path).await;
    let dry = "--dry-run=server";

    let scaled = kubectl.ok(&["scale", "deployment", "web-api", "--replicas=5", dry]);
    assert!(scaled.contains("scaled (server dry run)"), "{scaled}");
    let patch = r#"{"metadata":{"labels":{"tier":"web"}}}"#;
    let patched = kubectl.ok(&["patch", "deployment", "web-api", "--type", "merge", "-p", patch, dry]);
    // kubectl 1.32 prints no "(server dry run)" after a patch, against the API server itself too: the answered
    // object (below) and the cluster (after) show it was one.
    assert!(patched.contains("patched"), "{patched}");
    // The answer is the API server's dry-run object: the change shows, though nothing changed.
    let would_be: Value = serde_json::from_str(&kubectl.ok(&[
        "patch",
        "deployment",
        "web-api",
        "--type",
        "merge",
        "-p",
        patch,
        dry,
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(would_be["metadata"]["labels"]["tier"], "web", "{would_be}");
    let imaged = kubectl.ok(&["set", "image", "deployment/web-api", "web=registry.example/web:9", dry]);
    assert!(imaged.contains("image updated (server dry run)"), "{imaged}");
    let manifest = proxy.dir.join("settings.json");
    std::fs::write(
        &manifest,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": ns},
            "data": {"mode": "two"}})
        .to_string(),
    )
    .unwrap();
    let applied = kubectl.ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        manifest.to_str().unwrap(),
        dry,
    ]);
    assert!(applied.contains("(server dry run)"), "{applied}");
    // A client-side apply of a new object is a create (POST) with dryRun=All.
    let fresh = proxy.dir.join("fresh.json");
    std::fs::write(
        &fresh,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fresh", "namespace": ns},
            "data": {"mode": "new"}})
        .to_string(),
    )
    .unwrap();
    let created = kubectl.ok(&["apply", "-f", fresh.to_str().unwrap(), dry]);
    assert!(created.contains("created (server dry run)"), "{created}");
    // Deleting the Deployment is HIGH risk: a real delete waits for an approval; a dry run answers at once.
    let deleted = kubectl.ok(&["delete", "deployment", "web-api", dry]);
    assert!(deleted.contains("deleted (server dry run)"), "{deleted}");

    // Nothing changed on the cluster.
    let deployment_after = world.admin_get(&deployment_path).await;
    assert_eq!(
        deployment_after["metadata"]["resourceVersion"], deployment_before["metadata"]["resourceVersion"],
        "{deployment_after}"
    );
    assert_eq!(deployment_after["spec"]["replicas"], 2);
    assert!(
        deployment_after["metadata"]["labels"]["tier"].is_null(),
        "{deployment_after}"
    );
    let config_map_after = world.admin_get(&config_map_path).await;
    assert_eq!(
        config_map_after["metadata"]["resourceVersion"], config_map_before["metadata"]["resourceVersion"],
        "{config_map_after}"
    );
    assert_eq!(config_map_after["data"]["mode"], "one");
    let fresh_after = world
        .admin_get(&format!("/api/v1/namespaces/{ns}/configmaps/fresh"))
        .await;
    assert_eq!(fresh_after["reason"], "NotFound", "{fresh_after}");

    // Every mutation is a previewed dry-run action; none executed or waits for an approval.
    let actions = proxy.actions().await;
    let mutations: Vec<&Value> = actions
        .iter()
        .filter(|a| !matches!(a["action_type"].as_str(), Some("GET" | "LIST")))
        .collect();
    let types: Vec<&str> = mutations.iter().map(|a| a["action_type"].as_str().unwrap()).collect();
    for expected in ["SCALE", "PATCH", "SET_IMAGE", "APPLY", "DELETE"] {
        assert!(types.contains(&expected), "no {expected} action: {types:?}");
    }
    assert_eq!(
        mutations.len(),
        7,
        "scale, 2 patches, set image, 2 applies, delete: {types:?}"
    );
    for action in &mutations {
        assert_eq!(action["status"], "PREVIEWED", "{action}");
        let id = action["action_id"].as_str().unwrap();
        let (_, full) = proxy
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/actions/{id}"),
                &proxy.auditor,
                None,
            )
            .await;
        let kinds = super::entry_kinds(&full);
        assert!(kinds.contains(&"action.previewed"), "{id}: {kinds:?}");
        assert!(
            !kinds.contains(&"action.executed") && !kinds.contains(&"approval.requested"),
            "{id}: {kinds:?}"
        );
        if action["action_type"] == "DELETE" {
            let previewed = full["entries"].as_array().unwrap().last().unwrap();
            assert_eq!(previewed["payload"]["summary"], "would need 1 approval", "{previewed}");
        }
    }

    // The API server knows no other dryRun value, and neither does the proxy.
    let (status, refused) = proxy
        .call(
            reqwest::Method::DELETE,
            &format!("/k8s/apis/apps/v1/namespaces/{ns}/deployments/web-api?dryRun=Maybe"),
            &proxy.agent,
            None,
        )
        .await;
    assert_eq!((status, refused["kind"].as_str()), (400, Some("Status")), "{refused}");
    assert_eq!(world.admin_get(&deployment_path).await["metadata"]["name"], "web-api");
    proxy.finish().await;
}

/// `"dry_run": true` on `POST /api/v1/actions`: PREVIEWED with the API server's dry-run object, recorded as
/// `action.previewed` after risk and policy, no change on the cluster and no trust earned; the same request
/// without it changes the cluster and earns trust (so both checks can tell). A read cannot be a dry run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_action_over_the_api_is_previewed_and_changes_nothing() {
    let proxy = Proxy::start("rest_dry_run").await;
    let ns = proxy.world.app_ns.clone();
    proxy.world.deployment("web-api", 2).await;
    let deployment_path = format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api");
    let before = proxy.world.admin_get(&deployment_path).await;
    let scale = |dry_run: bool| {
        json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment", "resource_name": "web-api",
            "parameters": {"replicas": 7}, "justification": "dry-run test", "dry_run": dry_run})
    };
    let trust = || async {
        let path = format!("/api/v1/identities/{}", proxy.agent_id);
        let (_, me) = proxy
            .call(reqwest::Method::GET, &path, &proxy.server.admin_key, None)
            .await;
        me["trust_score"].as_i64().unwrap_or_else(|| panic!("{me}"))
    };

    let (status, previewed) = proxy
        .call(
            reqwest::Method::POST,
            "/api/v1/actions",
            &proxy.agent,
            Some(scale(true)),
        )
        .await;
    assert_eq!(status, 200, "{previewed}");
    assert_eq!(previewed["status"], "PREVIEWED", "{previewed}");
    assert_eq!(previewed["decision"]["outcome"], "allow", "{previewed}");
    assert_eq!(
        previewed["result"]["spec"]["replicas"], 7,
        "the dry-run Scale: {previewed}"
    );
    assert_eq!(previewed["signature_verified"], true);
    let id = previewed["action_id"].as_str().unwrap();
    let (_, full) = proxy
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/actions/{id}"),
            &proxy.auditor,
            None,
        )
        .await;
    assert_eq!(
        super::entry_kinds(&full),
        [
            "action.requested",
            "risk.classified",
            "policy.decided",
            "action.previewed"
        ]
    );
    let entry = &full["entries"][3];
    assert_eq!(previewed["ledger_entry_id"], entry["id"]);
    assert_eq!(entry["payload"]["would"]["outcome"], "execute", "{entry}");
    assert!(
        entry["payload"]["diff"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["path"] == "/spec/replicas" && c["to"] == 7),
        "{entry}"
    );
    assert_eq!(full["action"]["status"], "PREVIEWED");
    let after = proxy.world.admin_get(&deployment_path).await;
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert_eq!(after["spec"]["replicas"], 2);
    assert_eq!(trust().await, 0, "a preview earns no trust");

    // A read has nothing to preview: 400, recorded as action.rejected.
    let (status, refused) = proxy
        .call(
            reqwest::Method::POST,
            "/api/v1/actions",
            &proxy.agent,
            Some(
                json!({"action_type": "GET", "namespace": ns, "resource_kind": "Deployment",
                "resource_name": "web-api", "dry_run": true}),
            ),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("dry_run"),
        "{refused}"
    );
    let rejected = proxy
        .actions()
        .await
        .into_iter()
        .filter(|a| a["action_type"] == "GET")
        .count();
    assert_eq!(rejected, 0, "a rejected request is no action row");

    // The same request for real changes the cluster and earns trust.
    let (_, done) = proxy
        .call(
            reqwest::Method::POST,
            "/api/v1/actions",
            &proxy.agent,
            Some(scale(false)),
        )
        .await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(proxy.world.admin_get(&deployment_path).await["spec"]["replicas"], 7);
    assert!(trust().await > 0, "a verified success earns trust");
    proxy.finish().await;
}

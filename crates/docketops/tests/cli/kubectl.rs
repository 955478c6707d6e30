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
fn kubectl_binary() -> String {
    if let Ok(path) = std::env::var("DOCKETOPS_TEST_KUBECTL") {
        return path;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-kubectl");
    let status = Command::new(script).status().unwrap();
    assert!(status.success(), "scripts/ensure-kubectl failed");
    "kubectl".to_owned()
}

struct Kubectl {
    binary: String,
    kubeconfig: PathBuf,
    dir: PathBuf,
}

impl Kubectl {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.dir)
            .env("KUBECONFIG", &self.kubeconfig)
            .args(["--cache-dir", self.dir.join("cache").to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs and asserts success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
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
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "kubectl {args:?} should fail: {}", stdout(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_works_through_the_proxy_and_every_mutation_is_governed() {
    let binary = kubectl_binary();
    let app = TestApp::new("sqlite", "kubectl").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
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
    let call = |method: reqwest::Method, path: &str, key: &str, body: Option<Value>| {
        let mut request = http.request(method, format!("{}{path}", server.base)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    let (status, created) = call(
        reqwest::Method::POST,
        "/api/v1/identities",
        &server.admin_key,
        Some(json!({"name": "kubectl-bot", "kind": "agent", "roles": ["operator"],
            "scopes": [{"namespaces": [ns], "access": "mutate", "kinds": ["*"]}]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let agent = created["api_key"].as_str().unwrap().to_owned();
    let (status, created) = call(
        reqwest::Method::POST,
        "/api/v1/identities",
        &server.admin_key,
        Some(json!({"name": "kubectl-auditor", "kind": "human", "roles": ["auditor"], "scopes": []})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let auditor = created["api_key"].as_str().unwrap().to_owned();
    let (status, created) = call(
        reqwest::Method::POST,
        "/api/v1/identities",
        &server.admin_key,
        Some(
            json!({"name": "kubectl-approver", "kind": "human", "roles": ["approver"],
            "scopes": [{"namespaces": [ns], "access": "mutate", "kinds": ["*"]}]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let approver = created["api_key"].as_str().unwrap().to_owned();

    let dir = app.dir.path().join("kubectl");
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("config");
    std::fs::write(
        &kubeconfig,
        json!({"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "docketops", "cluster": {"server": format!("{}/k8s", server.base),
                "certificate-authority": cert}}],
            "users": [{"name": "agent", "user": {"token": agent}}],
            "contexts": [{"name": "docketops", "context": {"cluster": "docketops", "user": "agent", "namespace": ns}}],
            "current-context": "docketops"})
        .to_string(),
    )
    .unwrap();
    let kubectl = Kubectl {
        binary,
        kubeconfig,
        dir: dir.clone(),
    };
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
    let (status, approved) = call(
        reqwest::Method::POST,
        &format!("/api/v1/approvals/{id}/approve"),
        &approver,
        Some(json!({"comment": "ok"})),
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    let (_, done) = call(
        reqwest::Method::GET,
        &format!("/api/v1/actions/{id}?wait=60"),
        &auditor,
        None,
    )
    .await;
    assert_eq!(done["action"]["status"], "COMPLETED", "{done}");
    assert_eq!(live(deployment_path.clone()).await["reason"], "NotFound");
    let watch = kubectl.fails(&["get", "deployments", "--watch", "--request-timeout=5s"]);
    // Newer kubectl prints the Status message; kubectl 1.20's watch path prints its generic 405 text.
    assert!(
        watch.contains("not supported through the DocketOps proxy") || watch.contains("MethodNotAllowed"),
        "{watch}"
    );

    // Discovery is served read-only; the API key is required; writes to discovery are refused.
    let (status, resources) = call(reqwest::Method::GET, "/k8s/apis/apps/v1", &agent, None).await;
    assert_eq!(
        (status, resources["kind"].as_str()),
        (200, Some("APIResourceList")),
        "{resources}"
    );
    let (status, refused) = call(reqwest::Method::POST, "/k8s/api/v1", &agent, Some(json!({}))).await;
    assert_eq!((status, refused["kind"].as_str()), (405, Some("Status")), "{refused}");
    let (status, refused) = call(reqwest::Method::GET, "/k8s/api/v1/namespaces/x/pods", "dkt_wrong", None).await;
    assert_eq!(
        (status, refused["reason"].as_str()),
        (401, Some("Unauthorized")),
        "{refused}"
    );
    let (status, refused) = call(
        reqwest::Method::GET,
        "/k8s/apis/rbac.authorization.k8s.io/v1/clusterroles",
        &agent,
        None,
    )
    .await;
    assert_eq!(
        (status, refused["reason"].as_str()),
        (404, Some("NotFound")),
        "{refused}"
    );

    // Every mutation is in the ledger, as the agent's action.
    let (status, actions) = call(
        reqwest::Method::GET,
        &format!("/api/v1/actions?namespace={ns}&limit=200"),
        &auditor,
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
    let (_, report) = call(reqwest::Method::GET, "/api/v1/ledger/verify", &auditor, None).await;
    assert_eq!(report["valid"], true, "{report}");
    drop(server);
    app.finish().await;
}

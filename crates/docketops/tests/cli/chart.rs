//! The Helm chart (charts/docketops-ledger): rendered, accepted by the real API server, RBAC applied for real.
//!
//! Helm cannot be installed here, so the chart is rendered by tools/chart-render (Go's text/template with
//! sprig and Helm's own functions): `DOCKETOPS_CHART_RENDER` names the binary (scripts/test exports it);
//! without it the tests build it with scripts/ensure-chart-tools.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use reqwest::Method;
use serde_json::{Value, json};

use super::{BIN, KubeTestEnv, kube_test_env};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The renderer binary, built once per test process when the environment does not name one.
fn renderer() -> &'static Path {
    static RENDERER: OnceLock<PathBuf> = OnceLock::new();
    RENDERER.get_or_init(|| {
        if let Ok(path) = std::env::var("DOCKETOPS_CHART_RENDER")
            && !path.is_empty()
        {
            return PathBuf::from(path);
        }
        let out = Command::new(repo_root().join("scripts/ensure-chart-tools"))
            .output()
            .expect("scripts/ensure-chart-tools runs");
        assert!(
            out.status.success(),
            "scripts/ensure-chart-tools failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        PathBuf::from(stdout.lines().last().expect("the renderer's path").trim())
    })
}

/// Renders the chart as release `release` in `namespace` with the given values (written to a file and
/// passed with `-f`) and extra renderer arguments: the manifests, or the renderer's error message.
fn render(release: &str, namespace: &str, values: &Value, extra: &[&str]) -> Result<Vec<Value>, String> {
    let dir = tempfile::tempdir().unwrap();
    // JSON is YAML: the values file is the JSON text.
    let values_file = dir.path().join("values.yaml");
    std::fs::write(&values_file, values.to_string()).unwrap();
    let out = Command::new(renderer())
        .args(["--name", release, "--namespace", namespace, "--output", "json", "-f"])
        .arg(&values_file)
        .args(extra)
        .arg(repo_root().join("charts/docketops-ledger"))
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("the renderer prints a JSON list"))
}

/// The NOTES.txt `helm install` would print.
fn notes(release: &str, namespace: &str, set: &str) -> String {
    let out = Command::new(renderer())
        .args(["--name", release, "--namespace", namespace, "--notes", "--set", set])
        .arg(repo_root().join("charts/docketops-ledger"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn render_ok(release: &str, namespace: &str, values: &Value) -> Vec<Value> {
    render(release, namespace, values, &[]).unwrap_or_else(|error| panic!("the chart does not render: {error}"))
}

fn find<'a>(manifests: &'a [Value], kind: &str, name: &str) -> &'a Value {
    manifests
        .iter()
        .find(|m| m["kind"] == kind && m["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {}", kinds(manifests).join(", ")))
}

fn kinds(manifests: &[Value]) -> Vec<String> {
    manifests
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["kind"].as_str().unwrap(),
                m["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn count(manifests: &[Value], kind: &str) -> usize {
    manifests.iter().filter(|m| m["kind"] == kind).count()
}

/// A name unique to this test run, so tests can run in parallel and again on the same API server.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}", nanos % 0xffff_ffff)
}

fn args_of(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn env_of<'a>(deployment: &'a Value, name: &str) -> Option<&'a Value> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
}

/// The config file of the rendered ConfigMap, and proof that the binary accepts it: `docketops migrate
/// --config FILE` loads the whole file (unknown keys are errors) before it migrates a scratch ledger.
fn config_of(manifests: &[Value], prefix: &str) -> toml::Table {
    let text = find(manifests, "ConfigMap", &format!("{prefix}-config"))["data"]["docketops.toml"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("docketops.toml");
    std::fs::write(&file, &text).unwrap();
    let out = Command::new(BIN)
        .args(["migrate", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("DOCKETOPS_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docketops refuses the chart's config file: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.parse().unwrap()
}

/// Values of a production install: PostgreSQL behind a Secret of the operator's, three replicas, two
/// governed namespaces, a NetworkPolicy, a custom policy, TLS, guardrail kinds and a trust gate.
fn production_values(governed: &[&str]) -> Value {
    json!({
        "replicaCount": 3,
        "database": {"type": "postgres"},
        "existingSecret": "docketops-secrets",
        "governedNamespaces": governed,
        "networkPolicy": {
            "enabled": true,
            "ingressFrom": [{"namespaceSelector": {"matchLabels": {"team": "agents"}}}],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"port": 443}, {"port": 5432}]}]
        },
        "policies": {"strict.rego": "package docketops.policy\n\ndecision := {\"outcome\": \"deny\", \"reasons\": [\"closed\"]}\n"},
        "guardrails": {"kinds": {"DELETE": ["Pod", "Job"]}},
        "extraConfig": "[trust]\nhigh_min = 10\n",
        "tls": {"existingSecret": "docketops-tls"},
        "gateway": {"logLevel": "info,server=debug"}
    })
}

/// With defaults: one gateway on SQLite (on a kept claim), as `<release>-gateway`, hardened, probed, with
/// a config the binary accepts; with production values: PostgreSQL, replicas, the migration hook, the
/// NetworkPolicy, the operator's Secret and policy files. Bad values fail with a message naming the fix.
#[test]
fn chart_renders_defaults_and_production_values_and_refuses_bad_ones() {
    let defaults = render_ok("dkt", "docketops", &json!({}));
    for kind in ["Secret", "Job", "NetworkPolicy"] {
        assert_eq!(
            count(&defaults, kind),
            0,
            "no {kind} by default: {:?}",
            kinds(&defaults)
        );
    }
    let deployment = find(&defaults, "Deployment", "dkt");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate", "one SQLite file");
    assert_eq!(pod["serviceAccountName"], "dkt-gateway", "the account rbac.rs names");
    assert_eq!(
        args_of(deployment),
        ["serve", "--in-cluster"],
        "migrations run at start"
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["startupProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["ports"][0]["containerPort"], 8443);
    assert!(container["resources"]["requests"]["cpu"].is_string());
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(container["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    let mounts: BTreeMap<&str, &str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["mountPath"].as_str().unwrap(), m["name"].as_str().unwrap()))
        .collect();
    assert_eq!(mounts["/var/lib/docketops"], "data");
    assert_eq!(mounts["/tmp"], "tmp");
    let volumes = pod["volumes"].as_array().unwrap();
    let data = volumes.iter().find(|v| v["name"] == "data").unwrap();
    assert_eq!(data["persistentVolumeClaim"]["claimName"], "dkt-data");
    let claim = find(&defaults, "PersistentVolumeClaim", "dkt-data");
    assert_eq!(claim["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    assert_eq!(
        env_of(deployment, "DOCKETOPS_CONFIG").unwrap()["value"],
        "/etc/docketops/config/docketops.toml"
    );
    assert!(
        env_of(deployment, "DOCKETOPS_DATABASE_URL").is_none(),
        "SQLite in the data directory"
    );
    let service = find(&defaults, "Service", "dkt");
    assert_eq!(service["spec"]["selector"], pod_labels(deployment));
    let config = config_of(&defaults, "dkt");
    assert_eq!(config["release"].as_str(), Some("dkt"));
    assert_eq!(config["gateway_namespace"].as_str(), Some("docketops"));
    assert_eq!(config["listen"].as_str(), Some("0.0.0.0:8443"));
    assert_eq!(config["data_dir"].as_str(), Some("/var/lib/docketops"));
    assert_eq!(
        config["max_body_bytes"].as_integer(),
        Some(1_048_576),
        "an integer, not 1.048576e+06"
    );

    let production = render_ok("dkt", "docketops", &production_values(&["staging", "production"]));
    let deployment = find(&production, "Deployment", "dkt");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        args_of(deployment),
        [
            "serve",
            "--in-cluster",
            "--no-migrate",
            "--policy",
            "/etc/docketops/policies/strict.rego"
        ]
    );
    assert_eq!(
        find(&production, "ConfigMap", "dkt-policies")["data"]["strict.rego"]
            .as_str()
            .unwrap()
            .trim_end(),
        production_values(&[])["policies"]["strict.rego"]
            .as_str()
            .unwrap()
            .trim_end()
    );
    let database = env_of(deployment, "DOCKETOPS_DATABASE_URL").unwrap();
    assert_eq!(
        database["valueFrom"]["secretKeyRef"],
        json!({"name": "docketops-secrets", "key": "database-url"})
    );
    let key = env_of(deployment, "DOCKETOPS_SIGNING_KEY").unwrap();
    assert_eq!(
        key["valueFrom"]["secretKeyRef"],
        json!({"name": "docketops-secrets", "key": "signing-key.pem"}),
        "every replica must have the shared key"
    );
    assert_eq!(count(&production, "Secret"), 0, "the operator's Secret is used");
    assert_eq!(count(&production, "PersistentVolumeClaim"), 0);
    let job = find(&production, "Job", "dkt-migrate");
    assert_eq!(
        job["metadata"]["annotations"]["helm.sh/hook"],
        "pre-install,pre-upgrade"
    );
    assert_eq!(job["spec"]["template"]["spec"]["containers"][0]["args"][0], "migrate");
    assert_eq!(job["spec"]["template"]["spec"]["automountServiceAccountToken"], false);
    let job_labels = &job["spec"]["template"]["metadata"]["labels"];
    assert_ne!(
        job_labels["app.kubernetes.io/component"], "gateway",
        "the Service must not select the migration pod"
    );
    let policy = find(&production, "NetworkPolicy", "dkt");
    assert_eq!(policy["spec"]["podSelector"]["matchLabels"], pod_labels(deployment));
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["scheme"],
        "HTTPS"
    );
    let config = config_of(&production, "dkt");
    assert_eq!(
        config["guardrails"]["allowed_namespaces"],
        toml::Value::Array(vec!["staging".into(), "production".into()]),
        "the guardrails allow the governed namespaces"
    );
    assert_eq!(config["tls_cert"].as_str(), Some("/etc/docketops/tls/tls.crt"));
    assert_eq!(config["trust"]["high_min"].as_integer(), Some(10));
    // The executor accounts of both governed namespaces (their rules: chart_rbac_equals_docketops_kube_rbac).
    for namespace in ["staging", "production"] {
        for account in ["dkt-reader", "dkt-operator"] {
            assert!(
                production.iter().any(|m| m["kind"] == "ServiceAccount"
                    && m["metadata"]["name"] == account
                    && m["metadata"]["namespace"] == namespace),
                "{account} in {namespace}"
            );
        }
    }

    // The chart's own Secret (PostgreSQL URL, key, admin key) when the operator has none; the migration
    // Job needs it before the release's other objects exist, so it is a hook made first.
    let own = render_ok(
        "dkt",
        "docketops",
        &json!({"database": {"type": "postgres", "url": "postgres://docketops:pw@db:5432/ledger"},
                "signingKey": {"pem": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"},
                "bootstrapAdminKey": "dkt_human_example"}),
    );
    let secret = find(&own, "Secret", "dkt");
    assert_eq!(
        secret["metadata"]["annotations"]["helm.sh/hook"],
        "pre-install,pre-upgrade"
    );
    assert_eq!(secret["metadata"]["annotations"]["helm.sh/hook-weight"], "-10");
    assert_eq!(
        secret["data"]["database-url"], "cG9zdGdyZXM6Ly9kb2NrZXRvcHM6cHdAZGI6NTQzMi9sZWRnZXI=",
        "base64 of the URL"
    );
    let deployment = find(&own, "Deployment", "dkt");
    for variable in [
        "DOCKETOPS_DATABASE_URL",
        "DOCKETOPS_SIGNING_KEY",
        "DOCKETOPS_BOOTSTRAP_ADMIN_KEY",
    ] {
        let reference = &env_of(deployment, variable).unwrap()["valueFrom"]["secretKeyRef"];
        assert_eq!(reference["name"], "dkt", "{variable}");
        assert!(
            secret["data"][reference["key"].as_str().unwrap()].is_string(),
            "{variable}"
        );
    }

    let text = notes("dkt", "docketops", "governedNamespaces={staging,production}");
    assert!(
        text.contains(
            "docketops kube check --kubeconfig gateway.kubeconfig --release dkt --gateway-namespace docketops -n staging -n production"
        ),
        "{text}"
    );
    assert!(
        notes("dkt", "docketops", "replicaCount=1").contains("WARNING: governedNamespaces is empty"),
        "an install that governs nothing says so"
    );

    // Bad values fail the render, naming what to change; `--set` is typed as Helm types it.
    for (values, set, expected) in [
        (
            json!({}),
            "replicaCount=2",
            "replicaCount 2 needs PostgreSQL: the embedded SQLite ledger lives in one pod's volume",
        ),
        (
            json!({}),
            "governedNamespaces={staging,kube-system}",
            "governedNamespaces: kube-system cannot be governed",
        ),
        (
            json!({}),
            "governedNamespaces={kube-node-lease}",
            "governedNamespaces: kube-node-lease cannot be governed",
        ),
        (
            json!({}),
            "governedNamespaces={docketops}",
            "governedNamespaces: docketops cannot be governed",
        ),
        (
            json!({}),
            "governedNamespaces={Not_A_Namespace}",
            "\"Not_A_Namespace\" is not a valid namespace name",
        ),
        (
            json!({"database": {"type": "postgres", "url": "postgres://db/ledger"}}),
            "replicaCount=2",
            "needs one signing key shared by every replica",
        ),
        (
            json!({"database": {"type": "postgres"}}),
            "replicaCount=1",
            "database.type postgres needs database.url",
        ),
        (
            json!({"policies": {"a.rego": "package docketops.policy"}}),
            "opa.url=http://opa:8181",
            "policies and opa.url exclude each other",
        ),
    ] {
        let error = render("dkt", "docketops", &values, &["--set", set])
            .err()
            .unwrap_or_else(|| panic!("--set {set} must fail the render"));
        assert!(error.contains(expected), "--set {set}: {error}");
        assert!(
            error.contains("execution error at ("),
            "Helm's form of the message: {error}"
        );
    }
}

/// The labels the Deployment gives its pods (what the Service and the NetworkPolicy must select).
fn pod_labels(deployment: &Value) -> Value {
    deployment["spec"]["template"]["metadata"]["labels"].clone()
}

/// The kinds of the executor's RBAC (what `docketops kube rbac` prints).
const RBAC_KINDS: [&str; 5] = [
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];

/// The RBAC objects, reduced to what grants rights (names, rules, bindings), keyed for comparison.
fn rbac_of(manifests: &[Value]) -> BTreeMap<String, Value> {
    manifests
        .iter()
        .filter(|m| RBAC_KINDS.contains(&m["kind"].as_str().unwrap()))
        .map(|m| {
            let key = format!(
                "{} {}/{}",
                m["kind"].as_str().unwrap(),
                m["metadata"]["namespace"].as_str().unwrap_or("-"),
                m["metadata"]["name"].as_str().unwrap()
            );
            let reduced = json!({"apiVersion": m["apiVersion"], "rules": m["rules"],
                                 "roleRef": m["roleRef"], "subjects": m["subjects"]});
            (key, reduced)
        })
        .collect()
}

/// The chart grants exactly what `docketops kube rbac` prints for the same release, gateway namespace and
/// governed namespaces (crates/executor/src/rbac.rs), so the two cannot drift apart; and it carries the
/// labels rbac.rs puts on its objects.
#[test]
fn chart_rbac_equals_docketops_kube_rbac() {
    let chart = render_ok(
        "ledger",
        "governance",
        &json!({"governedNamespaces": ["staging", "production"]}),
    );
    let out = Command::new(BIN)
        .args([
            "kube",
            "rbac",
            "-n",
            "staging",
            "-n",
            "production",
            "--release",
            "ledger",
            "--gateway-namespace",
            "governance",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let printed = printed["items"].as_array().unwrap();
    let (from_chart, from_binary) = (rbac_of(&chart), rbac_of(printed));
    assert_eq!(
        from_chart.keys().collect::<Vec<_>>(),
        from_binary.keys().collect::<Vec<_>>(),
        "the same objects"
    );
    for (key, object) in &from_binary {
        assert_eq!(&from_chart[key], object, "{key}");
    }
    for item in printed {
        let name = item["metadata"]["name"].as_str().unwrap();
        let ours = chart
            .iter()
            .find(|m| {
                m["kind"] == item["kind"]
                    && m["metadata"]["name"] == name
                    && m["metadata"]["namespace"] == item["metadata"]["namespace"]
            })
            .unwrap();
        for (label, value) in item["metadata"]["labels"].as_object().unwrap() {
            assert_eq!(&ours["metadata"]["labels"][label], value, "{name}: label {label}");
        }
    }
}

/// Admin access to the test API server (scripts/kube-testenv) with reqwest.
struct Api {
    env: KubeTestEnv,
    http: reqwest::Client,
}

impl Api {
    fn new() -> Api {
        let env = kube_test_env();
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&env.ca_file).unwrap()).unwrap();
        let http = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
        Api { env, http }
    }

    /// A request with `token` (the admin's when None) and extra headers; the status and the JSON body.
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        content_type: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.env.server))
            .bearer_auth(token.unwrap_or(&self.env.token));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.header("content-type", content_type).body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn admin_create(&self, path: &str, body: &Value) -> Value {
        let (status, answer) = self
            .send(Method::POST, path, None, &[], "application/json", Some(body))
            .await;
        assert_eq!(status, 201, "POST {path}: {answer}");
        answer
    }

    async fn create_namespace(&self, name: &str) {
        self.admin_create(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )
        .await;
    }

    /// A Deployment `web` in `namespace`, made by the admin.
    async fn create_deployment(&self, namespace: &str) {
        self.admin_create(
            &format!("/apis/apps/v1/namespaces/{namespace}/deployments"),
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                             "template": {"metadata": {"labels": {"app": "web"}},
                                          "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]}}}}),
        )
        .await;
    }
}

/// The collection a manifest is created in: `/api/v1/namespaces/NS/configmaps`,
/// `/apis/rbac.authorization.k8s.io/v1/clusterroles`, …
fn collection_path(manifest: &Value) -> String {
    let api_version = manifest["apiVersion"].as_str().unwrap();
    let root = if api_version.contains('/') { "apis" } else { "api" };
    let kind = manifest["kind"].as_str().unwrap().to_lowercase();
    let plural = match kind.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{kind}s"),
    };
    let cluster_scoped = ["ClusterRole", "ClusterRoleBinding"].contains(&manifest["kind"].as_str().unwrap());
    match manifest["metadata"]["namespace"].as_str() {
        Some(namespace) => format!("/{root}/{api_version}/namespaces/{namespace}/{plural}"),
        None => {
            assert!(
                cluster_scoped,
                "{} {} has no namespace (kubectl apply of `helm template` would put it anywhere)",
                manifest["kind"], manifest["metadata"]["name"]
            );
            format!("/{root}/{api_version}/{plural}")
        }
    }
}

/// Every manifest of every values set is accepted by the real API server (server-side dry-run: full
/// validation and admission, nothing stored), in namespaces that exist for real.
#[tokio::test]
async fn every_rendered_manifest_passes_server_side_dry_run() {
    let api = Api::new();
    let id = unique();
    let (gateway_ns, staging, production) = (
        format!("chart-gw-{id}"),
        format!("chart-st-{id}"),
        format!("chart-pr-{id}"),
    );
    for namespace in [&gateway_ns, &staging, &production] {
        api.create_namespace(namespace).await;
    }
    let value_sets = [
        ("defaults", json!({})),
        (
            "production",
            production_values(&[staging.as_str(), production.as_str()]),
        ),
        (
            "own-secret",
            json!({"database": {"type": "postgres", "url": "postgres://docketops:pw@db:5432/ledger"},
                   "signingKey": {"pem": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"},
                   "bootstrapAdminKey": "dkt_human_example", "governedNamespaces": [staging],
                   "persistence": {"enabled": false}}),
        ),
        (
            "sqlite-no-volume",
            json!({"persistence": {"enabled": false}, "governedNamespaces": [production],
                   "opa": {"url": "http://opa.opa:8181"},
                   "gateway": {"policyMode": "ledger", "inCluster": false,
                               "extraVolumes": [{"name": "clusters", "secret": {"secretName": "kubeconfigs"}}],
                               "extraVolumeMounts": [{"name": "clusters", "mountPath": "/etc/docketops/clusters"}]}}),
        ),
    ];
    for (index, (label, values)) in value_sets.iter().enumerate() {
        // A release per set: cluster-wide names (ClusterRoles) differ.
        let release = format!("c{id}-{index}");
        let manifests = render_ok(&release, &gateway_ns, values);
        assert!(manifests.len() >= 10, "{label}: {:?}", kinds(&manifests));
        for manifest in &manifests {
            let path = format!("{}?dryRun=All", collection_path(manifest));
            let (status, answer) = api
                .send(Method::POST, &path, None, &[], "application/json", Some(manifest))
                .await;
            assert_eq!(
                status, 201,
                "{label}: the API server refuses {} {}: {answer}",
                manifest["kind"], manifest["metadata"]["name"]
            );
        }
    }
    // Dry-run stored nothing.
    let (status, _) = api
        .send(
            Method::GET,
            &format!("/apis/apps/v1/namespaces/{gateway_ns}/deployments/c{id}-0"),
            None,
            &[],
            "",
            None,
        )
        .await;
    assert_eq!(status, 404);
}

/// The chart's RBAC applied for real: with a token of the gateway's own service account, the gateway can
/// impersonate the executor accounts of its governed namespace (with the two extras) and nothing else; it
/// has no rights of its own; the impersonated operator can patch a Deployment in its namespace and nowhere
/// else; the reader cannot patch.
#[tokio::test]
async fn chart_rbac_lets_the_gateway_impersonate_only_the_executor_accounts() {
    let api = Api::new();
    let id = unique();
    let release = format!("r{id}");
    let (gateway_ns, app_ns, other_ns) = (
        format!("rbac-gw-{id}"),
        format!("rbac-app-{id}"),
        format!("rbac-other-{id}"),
    );
    for namespace in [&gateway_ns, &app_ns, &other_ns] {
        api.create_namespace(namespace).await;
        // No controller-manager here: create each namespace's default account (as the cli tests' harness does).
        api.admin_create(
            &format!("/api/v1/namespaces/{namespace}/serviceaccounts"),
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
        )
        .await;
    }
    api.create_deployment(&app_ns).await;
    api.create_deployment(&other_ns).await;

    let manifests = render_ok(&release, &gateway_ns, &json!({"governedNamespaces": [app_ns.clone()]}));
    let rbac: Vec<&Value> = manifests
        .iter()
        .filter(|m| RBAC_KINDS.contains(&m["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(rbac.len(), 16, "{:?}", kinds(&manifests));
    for manifest in &rbac {
        api.admin_create(&collection_path(manifest), manifest).await;
    }
    let token = api
        .admin_create(
            &format!("/api/v1/namespaces/{gateway_ns}/serviceaccounts/{release}-gateway/token"),
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
        )
        .await["status"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The binary's own check with the gateway's token: the executor accounts work in the governed
    // namespace (as the reader) and for Namespaces (as the cluster reader), and not in another one.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("gateway.kubeconfig");
    std::fs::write(
        &kubeconfig,
        json!({"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": api.env.server, "certificate-authority": api.env.ca_file}}],
            "users": [{"name": "gateway", "user": {"token": token}}],
            "contexts": [{"name": "gateway", "context": {"cluster": "c", "user": "gateway"}}],
            "current-context": "gateway"})
        .to_string(),
    )
    .unwrap();
    for (namespace, expected) in [(&app_ns, 0), (&other_ns, 1)] {
        let out = Command::new(BIN)
            .args(["kube", "check", "--kubeconfig"])
            .arg(&kubeconfig)
            .args([
                "-n",
                namespace,
                "--release",
                &release,
                "--gateway-namespace",
                &gateway_ns,
            ])
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(expected),
            "kube check -n {namespace}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let operator = format!("system:serviceaccount:{app_ns}:{release}-operator");
    let reader = format!("system:serviceaccount:{app_ns}:{release}-reader");
    let cluster_reader = format!("system:serviceaccount:{gateway_ns}:{release}-cluster-reader");
    let extras = [
        ("Impersonate-Extra-docketops-identity", "agt_chart_test"),
        ("Impersonate-Extra-docketops-action", "act_chart_test"),
    ];
    let scale = json!({"spec": {"replicas": 3}});
    let as_gateway = |method: Method, path: String, headers: Vec<(&'static str, String)>, body: Option<Value>| {
        let (api, token) = (&api, &token);
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let content_type = if method == Method::PATCH {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            api.send(method, &path, Some(token), &headers, content_type, body.as_ref())
                .await
        }
    };
    let impersonating = |user: &str| {
        let mut headers = vec![("Impersonate-User", user.to_owned())];
        headers.extend(extras.iter().map(|(n, v)| (*n, (*v).to_owned())));
        headers
    };
    let deployment = |namespace: &str| format!("/apis/apps/v1/namespaces/{namespace}/deployments/web");

    // The operator of the governed namespace, with both extras: patches its Deployment.
    let (status, patched) = as_gateway(
        Method::PATCH,
        deployment(&app_ns),
        impersonating(&operator),
        Some(scale.clone()),
    )
    .await;
    assert_eq!((status, &patched["spec"]["replicas"]), (200, &json!(3)), "{patched}");
    // The same operator in another namespace: impersonation works, the patch does not.
    let (status, answer) = as_gateway(
        Method::PATCH,
        deployment(&other_ns),
        impersonating(&operator),
        Some(scale.clone()),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains(&operator), "{answer}");
    // The reader reads, and cannot patch.
    let (status, _) = as_gateway(Method::GET, deployment(&app_ns), impersonating(&reader), None).await;
    assert_eq!(status, 200);
    let (status, answer) = as_gateway(
        Method::PATCH,
        deployment(&app_ns),
        impersonating(&reader),
        Some(scale.clone()),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    // The cluster reader lists Namespaces.
    let (status, _) = as_gateway(
        Method::GET,
        "/api/v1/namespaces".into(),
        impersonating(&cluster_reader),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // Nobody else can be impersonated: the executor account name in an ungoverned namespace or in
    // kube-system, other accounts, users, groups, other extras.
    let cannot_impersonate = [
        vec![(
            "Impersonate-User",
            format!("system:serviceaccount:{other_ns}:{release}-operator"),
        )],
        vec![(
            "Impersonate-User",
            format!("system:serviceaccount:kube-system:{release}-operator"),
        )],
        vec![("Impersonate-User", format!("system:serviceaccount:{app_ns}:default"))],
        vec![(
            "Impersonate-User",
            format!("system:serviceaccount:{gateway_ns}:{release}-gateway"),
        )],
        vec![("Impersonate-User", "admin".to_owned())],
        vec![
            ("Impersonate-User", operator.clone()),
            ("Impersonate-Group", "system:masters".to_owned()),
        ],
        vec![
            ("Impersonate-User", operator.clone()),
            ("Impersonate-Extra-scopes", "everything".to_owned()),
        ],
    ];
    for headers in cannot_impersonate {
        let (status, answer) = as_gateway(Method::GET, deployment(&app_ns), headers.clone(), None).await;
        assert_eq!(status, 403, "{headers:?}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("cannot impersonate"),
            "{headers:?}: {answer}"
        );
    }

    // The gateway's own rights: none on objects, here, in kube-system or in its namespace.
    for path in [
        deployment(&app_ns),
        "/api/v1/namespaces/kube-system/pods".to_owned(),
        "/api/v1/namespaces/kube-system/secrets".to_owned(),
        format!("/api/v1/namespaces/{gateway_ns}/secrets"),
        "/api/v1/namespaces".to_owned(),
    ] {
        let (status, answer) = as_gateway(Method::GET, path.clone(), vec![], None).await;
        assert_eq!(status, 403, "GET {path}: {answer}");
    }
    let (status, answer) = as_gateway(Method::PATCH, deployment(&app_ns), vec![], Some(scale)).await;
    assert_eq!(status, 403, "{answer}");

    // What the API server says the gateway may do: in each namespace only `impersonate` (plus the
    // self-reviews every authenticated user has); service accounts only in the governed namespace and its own.
    for (namespace, impersonable) in [
        (
            &app_ns,
            json!([format!("{release}-reader"), format!("{release}-operator")]),
        ),
        (&gateway_ns, json!([format!("{release}-cluster-reader")])),
        (&other_ns, Value::Null),
        (&"kube-system".to_owned(), Value::Null),
    ] {
        let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                            "spec": {"namespace": namespace}});
        let (status, answer) = as_gateway(
            Method::POST,
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews".into(),
            vec![],
            Some(review),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
        let mut accounts = Value::Null;
        for rule in answer["status"]["resourceRules"].as_array().unwrap() {
            let self_review =
                rule["apiGroups"] == json!(["authorization.k8s.io"]) && rule["verbs"] == json!(["create"]);
            assert!(
                rule["verbs"] == json!(["impersonate"]) || self_review,
                "{namespace}: the gateway may {rule}"
            );
            if rule["resources"] == json!(["serviceaccounts"]) {
                accounts = rule["resourceNames"].clone();
            } else if rule["verbs"] == json!(["impersonate"]) {
                assert_eq!(
                    rule["resources"],
                    json!(["userextras/docketops-identity", "userextras/docketops-action"]),
                    "{namespace}: {rule}"
                );
            }
        }
        assert_eq!(accounts, impersonable, "{namespace}: impersonable accounts");
    }
}

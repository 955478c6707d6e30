//! kubectl parity through the proxy (issue 19): `kubectl get` prints the API server's own columns (a `Table`
//! read), `get -A` lists the caller's namespaces only, `get -w` and `rollout status` watch, `replace` is an
//! APPLY and `diff` a recorded dry run that changes nothing. Each compared with what the API server says.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::kubectl::{Kubectl, Proxy};
use super::{BIN, stdout};

/// A kubectl for the same gateway with another API key.
fn kubectl_with_token(proxy: &Proxy, name: &str, token: &str) -> Kubectl {
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&proxy.kubectl.kubeconfig).unwrap()).unwrap();
    config["users"][0]["user"]["token"] = json!(token);
    let kubeconfig = proxy.dir.join(format!("{name}.config"));
    std::fs::write(&kubeconfig, config.to_string()).unwrap();
    Kubectl {
        binary: proxy.kubectl.binary.clone(),
        kubeconfig,
        dir: proxy.dir.clone(),
    }
}

/// A kubectl straight to the API server as its admin (what the gateway's answers are compared with).
fn direct_kubectl(proxy: &Proxy) -> Kubectl {
    let env = &proxy.world.env;
    let kubeconfig = proxy.dir.join("direct.config");
    std::fs::write(
        &kubeconfig,
        json!({"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "direct", "cluster": {"server": env.server, "certificate-authority": env.ca_file}}],
            "users": [{"name": "admin", "user": {"token": env.token}}],
            "contexts": [{"name": "direct", "context": {"cluster": "direct", "user": "admin",
                "namespace": proxy.world.app_ns}}],
            "current-context": "direct"})
        .to_string(),
    )
    .unwrap();
    Kubectl {
        binary: proxy.kubectl.binary.clone(),
        kubeconfig,
        dir: proxy.dir.join("direct"),
    }
}

/// `kubectl get` output without the last column (AGE, which may differ by a second between two calls).
fn without_age(table: &str) -> Vec<Vec<String>> {
    let rows: Vec<Vec<String>> = table
        .lines()
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect();
    // The AGE column (wherever `-o wide` puts it): the two reads are a second or so apart.
    let age = rows
        .first()
        .and_then(|header| header.iter().position(|cell| cell == "AGE"));
    rows.into_iter()
        .map(|mut cells| {
            if let Some(age) = age.filter(|&age| age < cells.len()) {
                cells.remove(age);
            }
            cells
        })
        .collect()
}

/// The executor's RBAC in `namespace` too (the test world grants it in the app namespace only).
async fn govern(proxy: &Proxy, namespace: &str) {
    let world = &proxy.world;
    world
        .admin_apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}))
        .await;
    let out = Command::new(BIN)
        .args(["kube", "rbac", "-n", namespace, "--release", &world.release])
        .args(["--gateway-namespace", &world.gateway_ns])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    for item in list["items"].as_array().unwrap() {
        world.admin_apply(item).await;
    }
}

async fn deployment_in(proxy: &Proxy, namespace: &str, name: &str, replicas: u32) {
    proxy
        .world
        .admin_apply(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]}}}}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_prints_the_api_servers_columns_and_all_namespaces_in_scope() {
    let proxy = Proxy::start("kubectl_tables").await;
    let (world, kubectl) = (&proxy.world, &proxy.kubectl);
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    world.deployment("worker", 1).await;
    world.config_maps(2).await;
    let direct = direct_kubectl(&proxy);

    // The same columns and rows as the API server gives kubectl directly.
    for args in [
        &["get", "deploy"][..],
        &["get", "deploy", "web-api"],
        &["get", "configmaps"],
        &["get", "deploy", "-o", "wide"],
    ] {
        let through = kubectl.ok(args);
        let straight = direct.ok(args);
        assert_eq!(
            through.lines().next(),
            straight.lines().next(),
            "{args:?}:\n{through}\n{straight}"
        );
        assert_eq!(
            without_age(&through),
            without_age(&straight),
            "{args:?}:\n{through}\n{straight}"
        );
    }
    let header = kubectl.ok(&["get", "deploy"]);
    assert!(
        header.starts_with("NAME") && header.contains("READY") && header.contains("UP-TO-DATE"),
        "{header}"
    );

    // Each read is a recorded, completed action.
    let actions = proxy.actions().await;
    let reads = |action_type: &str| {
        actions
            .iter()
            .filter(|a| a["action_type"] == action_type && a["status"] == "COMPLETED")
            .count()
    };
    assert!(reads("LIST") >= 4 && reads("GET") >= 1, "{actions:?}");

    // All namespaces: an agent reading two namespaces sees their objects, not a third namespace's.
    let suffix = ns.trim_start_matches("app-");
    let (second, third) = (format!("second-{suffix}"), format!("third-{suffix}"));
    govern(&proxy, &second).await;
    govern(&proxy, &third).await;
    deployment_in(&proxy, &second, "second-api", 1).await;
    deployment_in(&proxy, &third, "hidden-api", 1).await;
    let (reader, reader_id) = proxy
        .identity(json!({"name": "kubectl-reader", "kind": "agent", "roles": ["operator"],
            "scopes": [{"namespaces": [ns, second], "access": "read", "kinds": ["Deployment"]}]}))
        .await;
    let reader_kubectl = kubectl_with_token(&proxy, "reader", &reader);
    let all = reader_kubectl.ok(&["get", "deploy", "-A"]);
    assert!(all.starts_with("NAMESPACE") && all.contains("READY"), "{all}");
    for (namespace, name) in [(&ns, "web-api"), (&ns, "worker"), (&second, "second-api")] {
        assert!(
            all.lines()
                .any(|line| line.starts_with(namespace.as_str()) && line.contains(name)),
            "{namespace}/{name}: {all}"
        );
    }
    assert!(!all.contains("hidden-api") && !all.contains(&third), "{all}");
    let names = reader_kubectl.ok(&["get", "deploy", "--all-namespaces", "-o", "name"]);
    assert_eq!(names.lines().count(), 3, "{names}");
    assert!(!names.contains("hidden-api"), "{names}");
    // A namespace with more objects than a page: the answer holds its first page, and kubectl warns.
    let paged = reader_kubectl.run(&["get", "deploy", "-A", "--chunk-size=1"]);
    let warned = String::from_utf8_lossy(&paged.stderr);
    assert!(paged.status.success(), "{warned}");
    assert!(
        warned.contains("Warning") && warned.contains(&format!("kubectl get -n {ns}")),
        "{warned}"
    );
    assert!(!warned.contains(&second), "{warned}");
    // Recorded as reads of the reader, one LIST per namespace in scope.
    let (status, listed) = proxy
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/actions?namespace={second}&limit=50"),
            &proxy.auditor,
            None,
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    let lists = listed["actions"].as_array().unwrap();
    assert!(
        lists.len() >= 2
            && lists
                .iter()
                .all(|a| a["action_type"] == "LIST" && a["status"] == "COMPLETED"),
        "{lists:?}"
    );
    assert!(
        lists.iter().all(|a| a["identity_id"] == reader_id.as_str()),
        "{lists:?}"
    );
    let (_, hidden) = proxy
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/actions?namespace={third}&limit=50"),
            &proxy.auditor,
            None,
        )
        .await;
    assert_eq!(hidden["actions"], json!([]), "{hidden}");
    proxy.finish().await;
}

/// Runs kubectl in the background for `seconds`, then stops it; its stdout so far.
fn run_for(kubectl: &Kubectl, args: &[&str], seconds: u64) -> std::thread::JoinHandle<String> {
    let mut child = kubectl.command(args).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(seconds));
        child.kill().ok();
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        child.wait().ok();
        out
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_watches_replaces_and_diffs_through_the_proxy() {
    let proxy = Proxy::start("kubectl_watch").await;
    let (world, kubectl) = (&proxy.world, &proxy.kubectl);
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    let deployment_path = format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api");

    // `get -w` for 5 s shows a scale made meanwhile through the gateway.
    let watching = run_for(kubectl, &["get", "deploy", "web-api", "-w"], 5);
    tokio::time::sleep(Duration::from_secs(2)).await;
    kubectl.ok(&["scale", "deployment", "web-api", "--replicas=5"]);
    let watched = tokio::task::spawn_blocking(move || watching.join().unwrap())
        .await
        .unwrap();
    let rows: Vec<&str> = watched.lines().filter(|l| l.starts_with("web-api")).collect();
    assert!(watched.starts_with("NAME") && rows.len() >= 2, "{watched}");
    assert!(rows.last().unwrap().contains("/5"), "the scale shows: {watched}");
    // The gateway still serves after kubectl hung up.
    assert!(kubectl.ok(&["get", "deploy"]).contains("web-api"));

    // `rollout status` finishes once the restart (through the gateway) has rolled out. No controllers run in
    // the test API server: the test reports the rollout's status as the Deployment controller would.
    kubectl.ok(&["rollout", "restart", "deployment", "web-api"]);
    let mut status = kubectl
        .command(&["rollout", "status", "deployment/web-api", "--timeout=60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        status.try_wait().unwrap().is_none(),
        "rollout status waits for the rollout"
    );
    let live = world.admin_get(&deployment_path).await;
    let replicas = &live["spec"]["replicas"];
    let response = world
        .http
        .patch(format!("{}{deployment_path}/status", world.env.server))
        .bearer_auth(&world.env.token)
        .header("content-type", "application/merge-patch+json")
        .body(
            json!({"status": {"observedGeneration": live["metadata"]["generation"], "replicas": replicas,
                "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    let started = Instant::now();
    while status.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = status.wait_with_output().unwrap();
    assert!(
        out.status.success() && stdout(&out).contains("successfully rolled out"),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let actions = proxy.actions().await;
    let lists = actions.iter().filter(|a| a["action_type"] == "LIST").count();
    assert!(lists >= 3, "each watch is a recorded LIST: {actions:?}");

    // `replace` is an APPLY of the whole object.
    world
        .admin_apply(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": ns}, "data": {"mode": "one"}}))
        .await;
    let mut object: Value = serde_json::from_str(&kubectl.ok(&["get", "configmap", "settings", "-o", "json"])).unwrap();
    object["data"]["mode"] = json!("two");
    let manifest = proxy.dir.join("replace.json");
    std::fs::write(&manifest, object.to_string()).unwrap();
    let replaced = kubectl.ok(&["replace", "-f", manifest.to_str().unwrap()]);
    assert!(replaced.contains("replaced"), "{replaced}");
    let config_map_path = format!("/api/v1/namespaces/{ns}/configmaps/settings");
    assert_eq!(world.admin_get(&config_map_path).await["data"]["mode"], "two");
    let actions = proxy.actions().await;
    assert!(
        actions
            .iter()
            .any(|a| a["action_type"] == "APPLY" && a["resource_name"] == "settings" && a["status"] == "COMPLETED"),
        "{actions:?}"
    );
    // A replace of what was read before that change (a stale resourceVersion) is a conflict, not a lost update.
    object["data"]["mode"] = json!("three");
    std::fs::write(&manifest, object.to_string()).unwrap();
    let refused = kubectl.fails(&["replace", "-f", manifest.to_str().unwrap()]);
    assert!(
        refused.contains("Conflict") && refused.contains("modified"),
        "{refused}"
    );
    assert_eq!(world.admin_get(&config_map_path).await["data"]["mode"], "two");

    // `diff` prints the change and exits 1; nothing changes; the ledger has the dry run.
    let before = world.admin_get(&deployment_path).await;
    let wanted = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web-api", "namespace": ns},
        "spec": {"replicas": 7, "selector": {"matchLabels": {"app": "web-api"}},
                 "template": {"metadata": {"labels": {"app": "web-api"}},
                              "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]}}}});
    let manifest = proxy.dir.join("diff.json");
    std::fs::write(&manifest, wanted.to_string()).unwrap();
    let diffed = kubectl.run(&["diff", "-f", manifest.to_str().unwrap()]);
    let printed = stdout(&diffed);
    assert_eq!(
        diffed.status.code(),
        Some(1),
        "{printed}{}",
        String::from_utf8_lossy(&diffed.stderr)
    );
    assert!(
        printed.lines().any(|l| l.starts_with('+') && l.contains("replicas: 7")),
        "{printed}"
    );
    let after = world.admin_get(&deployment_path).await;
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert_eq!(after["spec"]["replicas"], 5);
    let actions = proxy.actions().await;
    // kubectl diff sends the difference as a patch with dryRun=All: a dry-run action, previewed only.
    let previewed: Vec<&Value> = actions.iter().filter(|a| a["status"] == "PREVIEWED").collect();
    assert!(previewed.iter().any(|a| a["resource_name"] == "web-api"), "{actions:?}");
    proxy.finish().await;
}

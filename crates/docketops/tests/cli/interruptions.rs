//! No change on a cluster without its ledger entry: clients that hang up mid-request, a gateway killed
//! with SIGKILL during executions, requests too large to record, and retried submissions. Real API
//! server, real gateway processes, SQLite and PostgreSQL.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::{KubeWorld, Server, TestApp, create_identities, entry_kinds};

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hang_ups_never_leave_a_change_unrecorded() {
        let app = super::TestApp::new("sqlite", "hang_ups").await;
        super::hang_ups_never_leave_a_change_unrecorded(&app).await;
        app.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_gateway_recovers_its_interrupted_actions() {
        let app = super::TestApp::new("sqlite", "killed_gateway").await;
        super::a_killed_gateway_recovers_its_interrupted_actions(&app).await;
        app.finish().await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hang_ups_never_leave_a_change_unrecorded() {
        let app = super::TestApp::new("postgres", "hang_ups").await;
        super::hang_ups_never_leave_a_change_unrecorded(&app).await;
        app.finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_gateway_recovers_its_interrupted_actions() {
        let app = super::TestApp::new("postgres", "killed_gateway").await;
        super::a_killed_gateway_recovers_its_interrupted_actions(&app).await;
        app.finish().await;
    }
}

/// One hand-written HTTP/1.1 request.
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    key: &'a str,
    content_type: &'a str,
    body: &'a str,
    /// More header lines, each ending in CRLF (a dashboard session's cookie).
    headers: &'a str,
}

/// Sends one HTTP/1.1 request by hand and goes away `after` into it: with a TCP reset (linger 0) or a
/// normal close. Whatever the gateway was doing goes on.
async fn hang_up(base: &str, request: Request<'_>, after: Duration, reset: bool) {
    let Request {
        method,
        path,
        key,
        content_type,
        body,
        headers,
    } = request;
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: {content_type}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(after).await;
    if reset {
        // Linger 0 makes the close a TCP reset; with a zero timeout nothing blocks on drop.
        #[allow(deprecated)]
        stream.set_linger(Some(Duration::ZERO)).unwrap();
    }
    drop(stream);
}

/// A dashboard session of the identity with `key`: its cookie header and the session's CSRF token.
async fn dashboard_session(server: &Server, key: &str) -> (String, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie_of = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|c| c.to_str().ok())
            .find_map(|c| {
                c.strip_prefix(&format!("{name}="))
                    .map(|v| v.split(';').next().unwrap().to_owned())
            })
            .unwrap()
    };
    let csrf_in = |html: &str| {
        let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
        html[at..].split('"').next().unwrap().to_owned()
    };
    let form = client.get(format!("{}/login", server.base)).send().await.unwrap();
    let login_cookie = cookie_of(&form, "dkt_login");
    let login_csrf = csrf_in(&form.text().await.unwrap());
    let signed_in = client
        .post(format!("{}/login", server.base))
        .header("cookie", format!("dkt_login={login_cookie}"))
        .form(&[("csrf", login_csrf.as_str()), ("api_key", key)])
        .send()
        .await
        .unwrap();
    let cookie = format!("dkt_session={}", cookie_of(&signed_in, "dkt_session"));
    let page = client
        .get(format!("{}/approvals", server.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let csrf = csrf_in(&page.text().await.unwrap());
    (cookie, csrf)
}

/// The digest a pending action's approval must name.
async fn pending_digest(server: &Server, approver: &str, id: &str) -> String {
    let (_, list) = server.get("/api/v1/approvals?status=pending", Some(approver)).await;
    let item = list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"]["action_id"] == id)
        .unwrap();
    item["digest"].as_str().unwrap().to_owned()
}

/// Every action of the ledger, as an auditor lists them.
async fn all_actions(server: &Server, auditor: &str) -> Vec<Value> {
    let (status, list) = server.get("/api/v1/actions?limit=1000", Some(auditor)).await;
    assert_eq!(status, 200, "{list}");
    list["actions"].as_array().unwrap().clone()
}

/// Waits until no action is RUNNING or EXECUTING (the gateway finishes or recovers every one).
async fn until_all_final(server: &Server, auditor: &str, limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let actions = all_actions(server, auditor).await;
        let unfinished: Vec<&Value> = actions
            .iter()
            .filter(|a| matches!(a["status"].as_str(), Some("RUNNING" | "EXECUTING")))
            .collect();
        if unfinished.is_empty() {
            return actions;
        }
        assert!(Instant::now() < deadline, "actions left unfinished: {unfinished:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The entry kinds of one action.
async fn kinds_of(server: &Server, auditor: &str, id: &str) -> (Value, Vec<String>) {
    let (status, action) = server.get(&format!("/api/v1/actions/{id}"), Some(auditor)).await;
    assert_eq!(status, 200, "{action}");
    let kinds = entry_kinds(&action).into_iter().map(str::to_owned).collect();
    (action, kinds)
}

/// For every Deployment `name → changed on the cluster`, the ledger holds exactly one verified execution of
/// it if it changed and none if it did not; every action is final.
/// Returns how many actions were recovered, and how many of those were found applied (COMPLETED).
async fn cluster_matches_ledger(server: &Server, auditor: &str, changed: &HashMap<String, bool>) -> (usize, usize) {
    let actions = until_all_final(server, auditor, Duration::from_secs(90)).await;
    let (mut recovered, mut applied) = (0, 0);
    for (name, was_changed) in changed {
        let mut executions = 0;
        // Reads (the proxy reads an object back after a change) change nothing.
        let changes = actions.iter().filter(|a| {
            a["resource_name"] == name.as_str() && !matches!(a["action_type"].as_str(), Some("GET" | "LIST"))
        });
        for action in changes {
            let id = action["action_id"].as_str().unwrap();
            let (detail, kinds) = kinds_of(server, auditor, id).await;
            let executed = kinds.iter().filter(|k| *k == "action.executed").count();
            executions += executed;
            if detail.to_string().contains("\"recovered\":true") {
                recovered += 1;
                applied += usize::from(action["status"] == "COMPLETED");
            }
            let status = action["status"].as_str().unwrap();
            if executed > 0 {
                assert_eq!(status, "COMPLETED", "{detail}");
                assert!(kinds.contains(&"outcome.verified".to_owned()), "{detail}");
            } else {
                assert!(
                    matches!(
                        status,
                        "FAILED" | "DENIED" | "PENDING_APPROVAL" | "REJECTED" | "EXPIRED"
                    ),
                    "{detail}"
                );
            }
        }
        assert_eq!(
            executions,
            usize::from(*was_changed),
            "{name}: changed on the cluster: {was_changed}, executions recorded: {executions}"
        );
    }
    (recovered, applied)
}

/// Closes the socket at 5 to 160 ms into each mutating path (actions, approve, the kubectl proxy, the
/// dashboard's approve), with a
/// TCP reset and with a normal close; afterwards every action is final and every change on the cluster has
/// its `action.executed` entry (and no entry claims a change the cluster does not show).
async fn hang_ups_never_leave_a_change_unrecorded(app: &TestApp) {
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    let args = world.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(app, &args);
    let made = create_identities(
        &server,
        &ns,
        &[
            ("agent", "agent", &["operator"]),
            ("approver", "human", &["approver"]),
            ("auditor", "human", &["auditor"]),
        ],
    )
    .await;
    let key = |name: &str| made[name].0.clone();
    let auditor = key("auditor");

    let (cookie, csrf) = dashboard_session(&server, &key("approver")).await;
    let delays = [5u64, 10, 20, 40, 80, 160];
    let mut names = Vec::new();
    let mut attempts = 0;
    for repeat in 0..3 {
        for &delay in &delays {
            for reset in [true, false] {
                for path in ["actions", "approve", "kubectl", "dashboard"] {
                    let name = format!("h{repeat}-{delay}-{}-{path}", if reset { "rst" } else { "fin" });
                    world.deployment(&name, 1).await;
                    let after = Duration::from_millis(delay);
                    match path {
                        "actions" => {
                            let body = json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment",
                                              "resource_name": name, "parameters": {"replicas": 2}, "justification": "hang-up"});
                            hang_up(
                                &server.base,
                                Request {
                                    method: "POST",
                                    path: "/api/v1/actions",
                                    key: &key("agent"),
                                    content_type: "application/json",
                                    body: &body.to_string(),
                                    headers: "",
                                },
                                after,
                                reset,
                            )
                            .await;
                        }
                        "approve" | "dashboard" => {
                            let body = json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                                              "resource_name": name, "justification": "hang-up"});
                            let (_, pending) = server.post("/api/v1/actions", &key("agent"), &body.to_string()).await;
                            assert_eq!(pending["status"], "PENDING_APPROVAL", "{pending}");
                            let id = pending["action_id"].as_str().unwrap();
                            if path == "dashboard" {
                                let digest = pending_digest(&server, &key("approver"), id).await;
                                let form =
                                    format!("csrf={csrf}&decision=approve&digest={}", digest.replace(':', "%3A"));
                                let cookie = format!("Cookie: {cookie}\r\n");
                                let page = format!("/approvals/{id}");
                                let request = Request {
                                    method: "POST",
                                    path: &page,
                                    key: "-",
                                    content_type: "application/x-www-form-urlencoded",
                                    body: &form,
                                    headers: &cookie,
                                };
                                hang_up(&server.base, request, after, reset).await;
                                attempts += 1;
                                names.push((name, path));
                                continue;
                            }
                            let path = format!("/api/v1/approvals/{id}/approve");
                            hang_up(
                                &server.base,
                                Request {
                                    method: "POST",
                                    path: &path,
                                    key: &key("approver"),
                                    content_type: "application/json",
                                    body: "{}",
                                    headers: "",
                                },
                                after,
                                reset,
                            )
                            .await;
                        }
                        _ => {
                            let path = format!("/k8s/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale");
                            let body = json!({"spec": {"replicas": 2}}).to_string();
                            hang_up(
                                &server.base,
                                Request {
                                    method: "PATCH",
                                    path: &path,
                                    key: &key("agent"),
                                    content_type: "application/merge-patch+json",
                                    body: &body,
                                    headers: "",
                                },
                                after,
                                reset,
                            )
                            .await;
                        }
                    }
                    attempts += 1;
                    names.push((name, path));
                }
            }
        }
    }
    assert!(attempts >= 100, "{attempts}");
    // Let the gateway finish what the clients left behind, then compare the cluster with the ledger.
    until_all_final(&server, &auditor, Duration::from_secs(90)).await;
    let mut changed = HashMap::new();
    for (name, path) in &names {
        let object = world
            .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"))
            .await;
        let was_changed = if matches!(*path, "approve" | "dashboard") {
            object["code"] == 404
        } else {
            object["spec"]["replicas"] == 2
        };
        changed.insert(name.clone(), was_changed);
    }
    let changes = changed.values().filter(|c| **c).count();
    let actions = all_actions(&server, &auditor).await;
    for kind in ["actions", "approve", "kubectl", "dashboard"] {
        let of_kind = names
            .iter()
            .filter(|(name, path)| *path == kind && changed[name])
            .count();
        let statuses: Vec<&str> = actions
            .iter()
            .filter(|a| {
                names
                    .iter()
                    .any(|(n, p)| *p == kind && a["resource_name"] == n.as_str())
            })
            .map(|a| a["status"].as_str().unwrap())
            .collect();
        eprintln!("hang-ups on {kind}: {of_kind} changes; {} actions", statuses.len());
        assert!(
            of_kind > 0,
            "no hang-up on {kind} let a change through: nothing proven there"
        );
    }
    cluster_matches_ledger(&server, &auditor, &changed).await;
    eprintln!("hang-ups: {attempts} attempts, {changes} changes on the cluster, each recorded");
    assert!(changes > 0, "no hang-up let a change through: the test proves nothing");
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
}

/// SIGKILL during executions: a gateway is killed while a batch of scale actions runs, a new one starts on
/// the same database (short lease) and recovers every interrupted action against the cluster; the cluster
/// and the ledger agree and the ledger verifies.
async fn a_killed_gateway_recovers_its_interrupted_actions(app: &TestApp) {
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    let mut args = world.serve_args();
    args.extend(["--instance-lease".to_owned(), "2".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = Server::start_with(app, &args);
    let made = create_identities(
        &server,
        &ns,
        &[("agent", "agent", &["operator"]), ("auditor", "human", &["auditor"])],
    )
    .await;
    let agent = made["agent"].0.clone();
    let auditor = made["auditor"].0.clone();
    let mut names = Vec::new();
    // Killed 150 ms in (mostly before any change), then right after a first change (during executions).
    for (round, kill_after) in [150u64, 0, 0].into_iter().enumerate() {
        let batch: Vec<String> = (0..10).map(|i| format!("k{round}-{i}")).collect();
        for name in &batch {
            world.deployment(name, 2).await;
        }
        let base = server.base.clone();
        let submissions: Vec<_> = batch
            .iter()
            .map(|name| {
                let body = json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment",
                                  "resource_name": name, "parameters": {"replicas": 3}, "justification": "kill"});
                let (base, agent) = (base.clone(), agent.clone());
                tokio::spawn(async move {
                    let _ = reqwest::Client::new()
                        .post(format!("{base}/api/v1/actions"))
                        .bearer_auth(agent)
                        .json(&body)
                        .send()
                        .await;
                })
            })
            .collect();
        if kill_after > 0 {
            tokio::time::sleep(Duration::from_millis(kill_after)).await;
        } else {
            // Right after the first change reaches the cluster: others are between effect and record.
            let list = format!("/apis/apps/v1/namespaces/{ns}/deployments");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                let items = world.admin_get(&list).await["items"].clone();
                let changed =
                    items.as_array().into_iter().flatten().any(|d| {
                        d["spec"]["replicas"] == 3 && batch.iter().any(|n| d["metadata"]["name"] == n.as_str())
                    });
                if changed {
                    break;
                }
            }
        }
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        for submission in submissions {
            let _ = submission.await;
        }
        names.extend(batch);
        server = Server::start_with(app, &args);
    }
    let mut changed = HashMap::new();
    until_all_final(&server, &auditor, Duration::from_secs(60)).await;
    for name in &names {
        let object = world
            .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"))
            .await;
        changed.insert(name.clone(), object["spec"]["replicas"] == 3);
    }
    let (recovered, applied) = cluster_matches_ledger(&server, &auditor, &changed).await;
    let interrupted = all_actions(&server, &auditor).await.len();
    eprintln!("killed gateway: {interrupted} actions, {recovered} recovered after SIGKILL, {applied} found applied");
    assert!(
        recovered > 0,
        "no action was caught mid-flight: the test proves nothing"
    );
    assert!(applied > 0, "no action was caught between its change and its record");
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
}

/// Requests that could not be recorded whole are refused before any change (413, recorded as
/// `action.rejected`); a change whose objects are over 1 MiB is recorded with bounded entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_are_bounded_before_any_change() {
    let app = TestApp::new("sqlite", "sizes").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    let args = world.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let made = create_identities(
        &server,
        &ns,
        &[("agent", "agent", &["operator"]), ("auditor", "human", &["auditor"])],
    )
    .await;
    let (agent, auditor) = (made["agent"].0.clone(), made["auditor"].0.clone());
    world.deployment("small", 1).await;

    // A 900 KB justification and a 600 KB ConfigMap: 413, recorded, nothing changed.
    let scale = json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment", "resource_name": "small",
                       "parameters": {"replicas": 2}, "justification": "j".repeat(900_000)});
    let configmap = json!({"action_type": "APPLY", "namespace": ns, "resource_kind": "ConfigMap", "resource_name": "big",
        "parameters": {"manifest": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big", "namespace": ns},
                                    "data": {"blob": "x".repeat(600_000)}}}});
    for body in [&scale, &configmap] {
        let (status, answer) = server.post("/api/v1/actions", &agent, &body.to_string()).await;
        assert_eq!(status, 413, "{answer}");
        assert_eq!(answer["error"]["code"], "payload_too_large", "{answer}");
    }
    let deployment = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/small"))
        .await;
    assert_eq!(deployment["spec"]["replicas"], 1);
    let configmap = world
        .admin_get(&format!("/api/v1/namespaces/{ns}/configmaps/big"))
        .await;
    assert_eq!(configmap["code"], 404, "{configmap}");
    let (_, ledger) = server.get("/api/v1/ledger/entries?limit=1000", Some(&auditor)).await;
    let rejected = entry_kinds(&ledger).iter().filter(|k| **k == "action.rejected").count();
    assert_eq!(rejected, 2, "{:?}", entry_kinds(&ledger));
    assert!(all_actions(&server, &auditor).await.is_empty());

    // A Deployment whose pod template is over 1 MiB: SET_IMAGE completes and every entry fits.
    let env: Vec<Value> = (0..12)
        .map(|i| json!({"name": format!("PAD_{i}"), "value": "p".repeat(95_000)}))
        .collect();
    world
        .admin_apply(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "huge", "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "huge"}},
                     "template": {"metadata": {"labels": {"app": "huge"}},
                                  "spec": {"containers": [{"name": "web", "image": "registry.example/web:1", "env": env}]}}}}))
        .await;
    let set_image = json!({"action_type": "SET_IMAGE", "namespace": ns, "resource_kind": "Deployment", "resource_name": "huge",
                           "parameters": {"container": "web", "image": "registry.example/web:2"}, "justification": "big"});
    let (status, done) = server.post("/api/v1/actions", &agent, &set_image.to_string()).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let (_, action) = server
        .get(
            &format!("/api/v1/actions/{}", done["action_id"].as_str().unwrap()),
            Some(&auditor),
        )
        .await;
    for entry in action["entries"].as_array().unwrap() {
        assert!(entry["payload"].to_string().len() < (1 << 20), "{}", entry["kind"]);
    }
    let kinds = entry_kinds(&action);
    assert!(
        kinds.contains(&"action.executed") && kinds.contains(&"outcome.verified"),
        "{kinds:?}"
    );
    let huge = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/huge"))
        .await;
    assert_eq!(
        huge["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/web:2"
    );
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}

/// `Idempotency-Key`: a retry returns the first action and executes nothing twice; the same key with
/// another request is refused (422).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_submission_runs_once() {
    let app = TestApp::new("postgres", "idempotency").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    let args = world.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let made = create_identities(&server, &ns, &[("agent", "agent", &["operator"])]).await;
    let agent = made["agent"].0.clone();
    world.deployment("web", 1).await;
    let body = json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment", "resource_name": "web",
                      "parameters": {"replicas": 2}, "justification": "once"});
    let send = |body: Value, key: &'static str| {
        let (base, agent) = (server.base.clone(), agent.clone());
        async move {
            let response = reqwest::Client::new()
                .post(format!("{base}/api/v1/actions"))
                .bearer_auth(agent)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    // Two at once and one later, with one key: one action, one execution.
    let ((s1, a1), (s2, a2)) = tokio::join!(send(body.clone(), "k-1"), send(body.clone(), "k-1"));
    let (s3, a3) = send(body.clone(), "k-1").await;
    for (status, answer) in [(s1, &a1), (s2, &a2), (s3, &a3)] {
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["action_id"], a1["action_id"], "{answer}");
        assert_eq!(answer["status"], "COMPLETED", "{answer}");
    }
    let (_, action) = server
        .get(
            &format!("/api/v1/actions/{}", a1["action_id"].as_str().unwrap()),
            Some(&agent),
        )
        .await;
    assert_eq!(
        entry_kinds(&action).iter().filter(|k| **k == "action.executed").count(),
        1
    );
    let mut other = body.clone();
    other["parameters"]["replicas"] = json!(5);
    let (status, refused) = send(other, "k-1").await;
    assert_eq!(status, 422, "{refused}");
    let (status, refused) = send(body, "bad key with spaces").await;
    assert_eq!(status, 400, "{refused}");
    let deployment = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web"))
        .await;
    assert_eq!(deployment["spec"]["replicas"], 2);
    drop(server);
    app.finish().await;
}

//! OpenTelemetry traces: a real gateway process exporting over OTLP/HTTP to a real receiver built on
//! OpenTelemetry's official protobuf definitions (tools/otlp-receiver, PyPI's `opentelemetry-proto`), against
//! the real API server, over HTTPS as a collector behind TLS is reached. A caller's W3C `traceparent` (an HTTP header; an MCP call's `params._meta`, over HTTP
//! and through `docketops mcp` on stdio) becomes the parent of the gateway's spans: the request, the action,
//! each pipeline step and each ledger commit, with the action and entry ids as attributes.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::mcp::{call, run_client};
use super::{BIN, KubeWorld, Server, TestApp, create_identities, self_signed_certificate};

/// The receiver process (killed when dropped) and its base URL (HTTPS, with a certificate for 127.0.0.1).
struct Receiver {
    child: Child,
    url: String,
}

impl Receiver {
    fn start(dir: &Path, cert: &Path, key: &Path) -> Receiver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-otlp-receiver");
        let out = Command::new(&script)
            .output()
            .expect("scripts/ensure-otlp-receiver runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let python = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_owned();
        let receiver = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/otlp-receiver/receiver.py");
        let port_file = dir.join("otlp-port");
        let child = Command::new(python)
            .arg(receiver)
            .arg(&port_file)
            .args([cert, key])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                break port;
            }
            assert!(Instant::now() < deadline, "the OTLP receiver did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Receiver {
            child,
            url: format!("https://127.0.0.1:{port}"),
        }
    }

    async fn received(&self) -> Value {
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let answer = client.get(format!("{}/spans", self.url)).send().await.unwrap();
        answer.json().await.unwrap()
    }

    /// The spans of `trace_id`, once the spans named `until` have all arrived (at most 30 s). Spans are sent
    /// in the order they end: waiting for the outermost one waits for all.
    async fn trace(&self, trace_id: &str, until: &[&str]) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let received = self.received().await;
            let spans: Vec<Value> = received["spans"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["trace_id"] == trace_id)
                .cloned()
                .collect();
            if until.iter().all(|name| spans.iter().any(|s| s["name"] == *name)) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "spans {until:?} of {trace_id} never came: {received}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh W3C trace context: (trace id, parent span id, `traceparent` with the sampled flag as given).
fn trace_context(sampled: bool) -> (String, String, String) {
    let trace_id = format!("{:032x}", rand::random::<u128>() | 1);
    let span_id = format!("{:016x}", rand::random::<u64>() | 1);
    let flags = if sampled { "01" } else { "00" };
    let traceparent = format!("00-{trace_id}-{span_id}-{flags}");
    (trace_id, span_id, traceparent)
}

fn named<'a>(spans: &'a [Value], name: &str) -> Vec<&'a Value> {
    spans.iter().filter(|s| s["name"] == name).collect()
}

fn one<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "one {name} span: {spans:#?}");
    found[0]
}

/// The pipeline's spans of one action: the action span, its steps and its commits, all carrying the action id;
/// the commits' entry ids are exactly the action's entries.
fn assert_action_trace(spans: &[Value], parent_span_id: &str, response: &Value, steps: &[&str]) {
    let action_id = response["action_id"].as_str().unwrap();
    let action = one(spans, "action");
    assert_eq!(action["parent_span_id"], parent_span_id, "{action}");
    assert_eq!(action["attributes"]["action.id"], action_id);
    assert_eq!(action["attributes"]["action.status"], response["status"]);
    assert_eq!(action["resource"]["service.name"], "docketops", "{action}");
    for step in steps {
        let span = one(spans, step);
        assert_eq!(
            span["parent_span_id"], action["span_id"],
            "{step} is a step of the action: {span}"
        );
        assert_eq!(span["attributes"]["action.id"], action_id, "{span}");
    }
    let commits = named(spans, "ledger.commit");
    let mut committed = BTreeSet::new();
    for commit in &commits {
        assert_eq!(commit["parent_span_id"], action["span_id"], "{commit}");
        assert_eq!(commit["attributes"]["action.id"], action_id, "{commit}");
        assert!(commit["attributes"]["ledger.seq"].as_i64().unwrap() > 0, "{commit}");
        for id in commit["attributes"]["ledger.entry_ids"].as_str().unwrap().split(',') {
            assert!(
                committed.insert(id.to_owned()),
                "entry {id} committed twice: {commits:#?}"
            );
        }
    }
    let entries: BTreeSet<String> = response["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        committed, entries,
        "the commits' entries are the action's: {commits:#?}"
    );
}

/// A SCALE with `traceparent` (and one without the sampled flag, and one with a malformed header); an MCP tool
/// call with `_meta.traceparent` over HTTP and over stdio; an approval that executes an action. Each sampled
/// trace arrives whole at the receiver under the caller's trace id; the unsampled one never does; the malformed
/// one starts a trace of its own. A blast-radius budget applies to every SCALE (its reservation is in the
/// decision's commit, which must be traced like any other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_trace_continues_through_every_step_and_ledger_commit() {
    let app = TestApp::new("sqlite", "traces").await;
    // The gateway trusts the receiver's certificate through the system's trust store, as it would a
    // collector's (SSL_CERT_FILE points the store at it).
    let (cert, key) = self_signed_certificate(app.dir.path());
    let receiver = Receiver::start(app.dir.path(), &cert, &key);
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    world.deployment("old-api", 1).await;
    let budgets = "[[budgets.limits]]\nper = \"namespace\"\nwindow_seconds = 3600\nmutations = 1000\n";
    let mut args = world.serve_args_with_config(app.dir.path(), "budgets.toml", budgets);
    args.extend(["--otlp-endpoint".to_owned(), receiver.url.clone()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cert = cert.display().to_string();
    let env = [("OTEL_BSP_SCHEDULE_DELAY", "100"), ("SSL_CERT_FILE", cert.as_str())];
    let server = Server::start_with_env(&app, "127.0.0.1:0", &args, &env);
    let made = create_identities(
        &server,
        &ns,
        &[
            ("traced-agent", "agent", &["operator"]),
            ("traced-approver", "human", &["approver"]),
            ("capped-agent", "agent", &["operator"]),
        ],
    )
    .await;
    let agent = made["traced-agent"].0.clone();
    let approver = made["traced-approver"].0.clone();
    let scale = |replicas: u32| {
        json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment", "resource_name": "web-api",
               "parameters": {"replicas": replicas}, "justification": "traced scale"})
    };
    let post = |path: String, key: &str, body: Value, traceparent: String| {
        let (base, key) = (server.base.clone(), key.to_owned());
        async move {
            let response = reqwest::Client::new()
                .post(format!("{base}{path}"))
                .bearer_auth(key)
                .header("traceparent", traceparent)
                .header("tracestate", "vendor=kept")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let submit = |body: Value, traceparent: String| post("/api/v1/actions".into(), &agent, body, traceparent);

    // Not sampled by the caller: nothing of it is exported (the sampler follows the caller's flag).
    let (unsampled_trace, _, unsampled) = trace_context(false);
    let answer = submit(scale(3), unsampled).await;
    assert_eq!(answer["status"], "COMPLETED", "{answer}");
    let unsampled_action = answer["action_id"].clone();
    // Malformed: the request is served, under a trace of the gateway's own.
    let answer = submit(scale(4), "00-not-a-trace-01".into()).await;
    assert_eq!(answer["status"], "COMPLETED", "{answer}");
    let malformed_action = answer["action_id"].clone();

    // Over HTTP: the request's span is the caller's child; the action's steps and commits below it.
    let (trace_id, parent, traceparent) = trace_context(true);
    let response = submit(scale(5), traceparent).await;
    assert_eq!(response["status"], "COMPLETED", "{response}");
    let steps = ["guardrails", "preview", "budget", "policy", "execute", "verify"];
    let spans = receiver.trace(&trace_id, &["POST /api/v1/actions"]).await;
    let request = one(&spans, "POST /api/v1/actions");
    assert_eq!(request["parent_span_id"], parent, "{request}");
    assert_eq!(
        request["trace_state"], "vendor=kept",
        "the caller's tracestate goes along: {request}"
    );
    assert_eq!(request["kind"], "SPAN_KIND_SERVER");
    assert_eq!(request["attributes"]["http.response.status_code"], 200);
    assert_eq!(request["attributes"]["http.route"], "/api/v1/actions");
    assert_action_trace(&spans, request["span_id"].as_str().unwrap(), &response, &steps);
    let policy = one(&spans, "policy");
    assert_eq!(policy["attributes"]["risk.level"], response["risk"]);
    assert_eq!(policy["attributes"]["policy.outcome"], "allow");
    let decision = named(&spans, "ledger.commit")
        .into_iter()
        .find(|c| c["attributes"]["ledger.entry_kinds"] == "risk.classified,policy.decided")
        .expect("the decision's commit (with the budget reservation) is traced");
    assert_eq!(
        decision["attributes"]["ledger.entry_ids"]
            .as_str()
            .unwrap()
            .split(',')
            .count(),
        2
    );

    // Over MCP (streamable HTTP): the tool call's `_meta` carries the trace.
    let (mcp_trace, mcp_parent, mcp_traceparent) = trace_context(true);
    let url = format!("{}/mcp", server.base);
    let arguments = json!({"namespace": ns, "resource_name": "web-api", "replicas": 6, "justification": "mcp"});
    let mut step = call("scale_workload", arguments.clone());
    step["meta"] = json!({"traceparent": mcp_traceparent});
    let answer = run_client(&["http", &url, &agent], &json!([step]));
    let result = &answer["results"][0]["structured"];
    assert_eq!(result["status"], "COMPLETED", "{answer}");
    let spans = receiver.trace(&mcp_trace, &["tools/call scale_workload"]).await;
    let tool_call = one(&spans, "tools/call scale_workload");
    assert_eq!(tool_call["parent_span_id"], mcp_parent, "{tool_call}");
    assert_eq!(tool_call["attributes"]["mcp.tool"], "scale_workload");
    assert_action_trace(&spans, tool_call["span_id"].as_str().unwrap(), result, &steps);

    // Over stdio (`docketops mcp`, which exports nothing itself): the `_meta` context goes on as the HTTP
    // request's `traceparent`, so the gateway's spans still join the agent's trace.
    let (stdio_trace, stdio_parent, stdio_traceparent) = trace_context(true);
    let mut stdio_arguments = arguments.clone();
    stdio_arguments["replicas"] = json!(2);
    let mut step = call("scale_workload", stdio_arguments);
    step["meta"] = json!({"traceparent": stdio_traceparent});
    let answer = run_client(&["stdio", BIN, &server.base, &agent], &json!([step]));
    let result = &answer["results"][0]["structured"];
    assert_eq!(result["status"], "COMPLETED", "{answer}");
    let spans = receiver.trace(&stdio_trace, &["POST /api/v1/actions"]).await;
    let request = one(&spans, "POST /api/v1/actions");
    assert_eq!(request["parent_span_id"], stdio_parent, "{request}");
    assert_action_trace(&spans, request["span_id"].as_str().unwrap(), result, &steps);

    assert_approval_trace(&receiver, &submit, &post, &ns, &approver).await;

    // A budget refusal replaces the decision in its commit: that commit is traced with the refusal's entry.
    let (capped_key, capped_id) = made["capped-agent"].clone();
    let own = json!({"limits": [{"window_seconds": 600, "mutations": 1}], "reason": "one mutation"});
    let set = reqwest::Client::new()
        .put(format!("{}/api/v1/identities/{capped_id}/budget", server.base))
        .bearer_auth(&server.admin_key)
        .json(&own)
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success(), "{}", set.text().await.unwrap());
    let capped = |body: Value, traceparent: String| post("/api/v1/actions".into(), &capped_key, body, traceparent);
    let first = capped(scale(3), trace_context(true).2).await;
    assert_eq!(first["status"], "COMPLETED", "{first}");
    let (refused_trace, refused_parent, refused_traceparent) = trace_context(true);
    let refused = capped(scale(4), refused_traceparent).await;
    assert_eq!(refused["status"], "DENIED", "{refused}");
    assert_eq!(refused["decision"]["mode"], "budget", "{refused}");
    let spans = receiver.trace(&refused_trace, &["POST /api/v1/actions"]).await;
    let request = one(&spans, "POST /api/v1/actions");
    assert_eq!(request["parent_span_id"], refused_parent, "{request}");
    let before_execution = ["guardrails", "preview", "budget", "policy"];
    assert_action_trace(
        &spans,
        request["span_id"].as_str().unwrap(),
        &refused,
        &before_execution,
    );
    let kinds: Vec<&Value> = named(&spans, "ledger.commit")
        .iter()
        .map(|c| &c["attributes"]["ledger.entry_kinds"])
        .collect();
    assert_eq!(kinds, ["action.requested", "budget.exceeded"], "{spans:#?}");
    // The configured namespace budget reserved for every admitted SCALE (in the decision's commit, traced above).
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let reservations = metrics
        .lines()
        .find_map(|line| line.strip_prefix("docketops_budget_reservations "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no docketops_budget_reservations in {metrics}"));
    assert!(reservations >= 6.0, "{reservations} reservations");

    // Everything above was exported after the unsampled and malformed requests ended: those are in by now.
    let received = receiver.received().await;
    let all = received["spans"].as_array().unwrap();
    assert!(
        all.iter().all(|s| s["trace_id"] != unsampled_trace.as_str()),
        "unsampled spans were exported"
    );
    let unsampled_exported = all.iter().any(|s| s["attributes"]["action.id"] == unsampled_action);
    assert!(
        !unsampled_exported,
        "the unsampled action was exported under another trace"
    );
    let own = all
        .iter()
        .find(|s| s["name"] == "action" && s["attributes"]["action.id"] == malformed_action)
        .expect("the malformed request's action was traced");
    let root = all
        .iter()
        .find(|s| s["span_id"] == own["parent_span_id"])
        .expect("its request span");
    assert_eq!(
        root["parent_span_id"], "",
        "a malformed traceparent starts a new trace: {root}"
    );
    assert_eq!(
        received["duplicate_attributes"],
        json!([]),
        "each attribute once per span"
    );
    assert_eq!(
        received["refused"], 0,
        "every export was a valid ExportTraceServiceRequest"
    );
}

/// An approval that completes an action executes it in the approver's trace: the approval span holds the
/// re-preview, the execution, the verification and their commits, which are exactly the entries the approval
/// added.
async fn assert_approval_trace<S, SF, P, PF>(receiver: &Receiver, submit: &S, post: &P, ns: &str, approver: &str)
where
    S: Fn(Value, String) -> SF,
    SF: std::future::Future<Output = Value>,
    P: Fn(String, &str, Value, String) -> PF,
    PF: std::future::Future<Output = Value>,
{
    let delete = json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                        "resource_name": "old-api", "justification": "traced removal"});
    let pending = submit(delete, trace_context(true).2).await;
    assert_eq!(pending["status"], "PENDING_APPROVAL", "{pending}");
    let action_id = pending["action_id"].as_str().unwrap();
    let (approval_trace, approval_parent, approval_traceparent) = trace_context(true);
    let path = format!("/api/v1/approvals/{action_id}/approve");
    let approved = post(path, approver, json!({"comment": "traced"}), approval_traceparent).await;
    assert_eq!(approved["status"], "COMPLETED", "{approved}");
    let route = "POST /api/v1/approvals/{action_id}/approve";
    let spans = receiver.trace(&approval_trace, &[route]).await;
    let request = one(&spans, route);
    assert_eq!(request["parent_span_id"], approval_parent, "{request}");
    let approval = one(&spans, "approval");
    assert_eq!(approval["parent_span_id"], request["span_id"], "{approval}");
    assert_eq!(approval["attributes"]["action.id"], action_id);
    assert_eq!(approval["attributes"]["approval.verdict"], "approve");
    for step in ["preview", "execute", "verify"] {
        assert_eq!(one(&spans, step)["parent_span_id"], approval["span_id"], "{spans:#?}");
    }
    let ids = |answer: &Value| -> BTreeSet<String> {
        let entries = answer["entries"].as_array().unwrap();
        entries.iter().map(|e| e.as_str().unwrap().to_owned()).collect()
    };
    let added: BTreeSet<String> = ids(&approved).difference(&ids(&pending)).cloned().collect();
    let committed: BTreeSet<String> = named(&spans, "ledger.commit")
        .iter()
        .inspect(|c| assert_eq!(c["parent_span_id"], approval["span_id"], "{c}"))
        .flat_map(|c| c["attributes"]["ledger.entry_ids"].as_str().unwrap().split(','))
        .map(str::to_owned)
        .collect();
    assert_eq!(committed, added, "{spans:#?}");
}

use std::time::{Duration, Instant};

use policy::{EmbeddedEngine, OpaClient, Outcome, PolicyEngine, PolicyError};

use crate::common::{data, input, sample_inputs};
use crate::real_opa::{Options, RealOpa};

const PATH: &str = "docketops/policy/decision";
const TIMEOUT: Duration = Duration::from_secs(5);

fn client(server: &RealOpa) -> OpaClient {
    OpaClient::new(&server.url, PATH, TIMEOUT).expect("client")
}

#[tokio::test]
async fn the_same_decisions_as_the_embedded_engine() {
    let embedded = EmbeddedEngine::default_policy().expect("loads");
    let options = Options {
        decision_ids: true,
        bundle_revision: Some(embedded.revision().to_string()),
    };
    let server = RealOpa::default_policy(options);
    let opa = client(&server);
    let mut outcomes = Vec::new();
    for document in sample_inputs() {
        let local = embedded.decide(&document).expect("embedded");
        let remote = opa.decide(&document).await.expect("opa");
        assert_eq!(remote.outcome, local.outcome);
        assert_eq!(remote.reasons, local.reasons);
        assert_eq!(remote.input_sha256, local.input_sha256);
        assert_eq!(remote.policy, local.policy);
        assert_eq!(remote.engine, "opa");
        assert_eq!(remote.revision, format!("opa:docketops={}", embedded.revision()));
        // OPA's own decision id, so the two logs can be joined.
        assert!(
            !remote.decision_id.starts_with("dec_") && remote.decision_id.len() == 36,
            "{}",
            remote.decision_id
        );
        outcomes.push(remote.outcome);
    }
    for outcome in [Outcome::Allow, Outcome::Deny, Outcome::RequireApproval] {
        assert!(outcomes.contains(&outcome), "{outcome} not covered");
    }
    server.stop();
}

#[tokio::test]
async fn revision_and_decision_id_without_help_from_the_server() {
    let server = RealOpa::default_policy(Options::default());
    let document = input("agent", "SCALE", "MEDIUM", Some("load test"));
    let decision = client(&server).decide(&document).await.expect("opa");
    assert_eq!(decision.revision, "opa");
    assert!(decision.decision_id.starts_with("dec_"), "{}", decision.decision_id);
    let configured = client(&server).with_revision("git:0123abcd");
    assert_eq!(
        configured.decide(&document).await.expect("opa").revision,
        "git:0123abcd"
    );
    server.stop();
}

#[tokio::test]
async fn an_undefined_path_is_undefined() {
    let server = RealOpa::default_policy(Options::default());
    let opa = OpaClient::new(&server.url, "docketops/policy/nothing", TIMEOUT).expect("client");
    let error = opa
        .decide(&input("human", "GET", "LOW", None))
        .await
        .expect_err("undefined");
    assert!(matches!(error, PolicyError::Undefined), "{error}");
    server.stop();

    // Defined path, undefined value for this input.
    let server = RealOpa::fixture("undefined_decision.rego");
    let error = client(&server)
        .decide(&input("human", "GET", "LOW", None))
        .await
        .expect_err("undefined");
    assert!(matches!(error, PolicyError::Undefined), "{error}");
    server.stop();
}

#[tokio::test]
async fn a_malformed_result_from_opa_is_malformed() {
    let server = RealOpa::fixture("malformed_outcome.rego");
    let error = client(&server)
        .decide(&input("human", "GET", "LOW", None))
        .await
        .expect_err("refused");
    assert!(matches!(error, PolicyError::Malformed(_)), "{error}");
    server.stop();
}

#[tokio::test]
async fn an_opa_error_response_is_unavailable_with_its_message() {
    // Two values for one complete rule: OPA answers 500 with the evaluation error in `errors`.
    let server = RealOpa::fixture("conflict_error.rego");
    let error = client(&server)
        .decide(&input("human", "GET", "LOW", None))
        .await
        .expect_err("refused");
    let PolicyError::Unavailable(text) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(
        text.contains("500")
            && text.contains("internal_error")
            && text.contains("error(s) occurred while evaluating query")
            && text.contains("eval_conflict_error"),
        "{text}"
    );
    // The embedded engine refuses the same input too.
    let embedded = EmbeddedEngine::from_files(&[data("conflict_error.rego")]).expect("loads");
    let error = embedded
        .decide(&input("human", "GET", "LOW", None))
        .expect_err("refused");
    assert!(matches!(error, PolicyError::Evaluation(_)), "{error}");
    server.stop();
}

/// A failing builtin: regorus raises it (an evaluation error); OPA does so only when asked with
/// `?strict-builtin-errors=true`, and otherwise evaluates the expression as undefined. The OpaClient sends the
/// flag, so a policy error fails closed with either engine. (The test server's bindings always evaluate strictly:
/// without the flag it answers that it cannot know non-strict OPA's answer, see tools/opa-rest/server.py; with
/// it, exactly what OPA answers, so the client's answer below also shows that it sent the flag.)
#[tokio::test]
async fn a_builtin_error_is_an_evaluation_error_with_strict_builtin_errors() {
    let server = RealOpa::fixture("evaluation_error.rego");
    let url = format!("{}/v1/data/{PATH}", server.url);
    let body = serde_json::json!({"input": input("human", "GET", "LOW", None)});
    let http = reqwest::Client::new();
    let strict = http
        .post(format!("{url}?strict-builtin-errors=true"))
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert_eq!(strict.status(), 500);
    let answer: serde_json::Value = strict.json().await.expect("JSON");
    assert_eq!(answer["code"], "internal_error", "{answer}");
    assert_eq!(
        answer["message"], "error(s) occurred while evaluating query",
        "{answer}"
    );
    assert_eq!(answer["errors"][0]["code"], "eval_builtin_error", "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("to_number")),
        "{answer}"
    );

    // The client asks strictly: OPA's own error, passed on as Unavailable (fail closed).
    let error = client(&server)
        .decide(&input("human", "GET", "LOW", None))
        .await
        .expect_err("refused");
    let PolicyError::Unavailable(text) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(
        text.contains("500")
            && text.contains("internal_error")
            && text.contains("error(s) occurred while evaluating query")
            && text.contains("eval_builtin_error")
            && text.contains("to_number"),
        "{text}"
    );
    assert!(!text.contains("non-strict"), "the client did not ask strictly: {text}");
    // The embedded engine refuses the same input: both engines fail closed.
    let embedded = EmbeddedEngine::from_files(&[data("evaluation_error.rego")]).expect("loads");
    let error = embedded
        .decide(&input("human", "GET", "LOW", None))
        .expect_err("refused");
    assert!(matches!(error, PolicyError::Evaluation(_)), "{error}");
    server.stop();
}

/// The client's query string: provenance (for the revision) and strict builtin errors, checked on the request
/// line a listener receives.
#[tokio::test]
async fn the_client_asks_for_provenance_and_strict_builtin_errors() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        // The whole request (head and body), so that closing the socket cannot cut the answer short.
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        while !complete(&request) {
            let read = socket.read(&mut buffer).await.expect("read");
            assert!(read > 0, "the client closed the request early");
            request.extend_from_slice(&buffer[..read]);
        }
        let answer = "{\"result\": {\"outcome\": \"allow\", \"reasons\": []}}";
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        );
        socket.write_all(response.as_bytes()).await.expect("write");
        String::from_utf8_lossy(&request)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    });
    let opa = OpaClient::new(&url, PATH, TIMEOUT).expect("client");
    let decision = opa.decide(&input("human", "GET", "LOW", None)).await.expect("allow");
    assert_eq!(decision.outcome, Outcome::Allow);
    let request_line = server.await.expect("served");
    assert_eq!(
        request_line,
        format!("POST /v1/data/{PATH}?provenance=true&strict-builtin-errors=true HTTP/1.1")
    );
}

/// An HTTP/1.1 request is complete: its head and a body of its Content-Length.
fn complete(request: &[u8]) -> bool {
    let Some(end) = request.windows(4).position(|window| window == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    request.len() >= end + 4 + length
}

#[tokio::test]
async fn the_rest_contract_of_opa() {
    let server = RealOpa::default_policy(Options::default());
    let url = format!("{}/v1/data/{PATH}", server.url);
    let http = reqwest::Client::new();
    // A body that is not a JSON object: 400 invalid_parameter.
    let bad = http.post(&url).body("[1").send().await.expect("answers");
    assert_eq!(bad.status(), 400);
    let answer: serde_json::Value = bad.json().await.expect("JSON");
    assert_eq!(answer["code"], "invalid_parameter", "{answer}");
    // No "input" key: evaluated without input, with OPA's warning.
    let answer: serde_json::Value = http
        .post(&url)
        .body("{}")
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["warning"]["code"], "api_usage_warning", "{answer}");
    assert!(
        answer.get("decision_id").is_none() && answer.get("provenance").is_none(),
        "{answer}"
    );
    server.stop();
}

#[tokio::test]
async fn a_stopped_server_is_unavailable() {
    let server = RealOpa::default_policy(Options::default());
    let opa = client(&server);
    let document = input("agent", "SCALE", "MEDIUM", Some("load test"));
    opa.decide(&document).await.expect("running");
    let url = server.url.clone();
    // Killed, as a crashed or restarted OPA: its kept-alive connection dies with it.
    server.stop();
    // The first request may still go out on that pooled connection (which fails as "connection closed before
    // message completed") or find it gone; either way OPA is unavailable. The next one cannot connect.
    let error = opa.decide(&document).await.expect_err("stopped");
    assert!(
        matches!(&error, PolicyError::Unavailable(text) if text.contains(&url)),
        "{error:?}"
    );
    let error = opa.decide(&document).await.expect_err("stopped");
    let PolicyError::Unavailable(text) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(text.contains("cannot connect") && text.contains(&url), "{text}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable_within_the_timeout() {
    // Accepts connections and reads nothing, answers nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let timeout = Duration::from_millis(300);
    let opa = OpaClient::new(&url, PATH, timeout).expect("client");
    let started = Instant::now();
    let error = opa
        .decide(&input("human", "GET", "LOW", None))
        .await
        .expect_err("timeout");
    let elapsed = started.elapsed();
    let PolicyError::Unavailable(text) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(text.contains("did not answer within 300ms"), "{text}");
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_secs(2),
        "{elapsed:?}"
    );
    silent.abort();
}

#[tokio::test]
async fn the_policy_engine_enum_speaks_to_opa() {
    let server = RealOpa::default_policy(Options::default());
    let engine = PolicyEngine::Opa(client(&server));
    let decision = engine
        .decide(&input("human", "DELETE", "HIGH", Some("x")))
        .await
        .expect("opa");
    assert_eq!(decision.outcome, Outcome::RequireApproval);
    let text = engine.describe();
    assert!(text.contains(&server.url) && text.contains(PATH), "{text}");
    server.stop();
}

#[test]
fn bad_configuration_is_refused() {
    assert!(matches!(
        OpaClient::new("not a url", PATH, TIMEOUT),
        Err(PolicyError::Config(_))
    ));
    assert!(matches!(
        OpaClient::new("ftp://opa:8181", PATH, TIMEOUT),
        Err(PolicyError::Config(_))
    ));
    assert!(matches!(
        OpaClient::new("http://opa:8181", "", TIMEOUT),
        Err(PolicyError::Config(_))
    ));
    assert!(matches!(
        OpaClient::new("http://opa:8181", "a//b", TIMEOUT),
        Err(PolicyError::Config(_))
    ));
    let opa = OpaClient::new("http://opa:8181/", "/docketops/policy/decision/", TIMEOUT).expect("client");
    assert_eq!(opa.policy_id(), "docketops.policy");
    assert_eq!(opa.base_url(), "http://opa:8181");
}

use std::time::{Duration, Instant};

use policy::{EmbeddedEngine, OpaClient, Outcome, PolicyEngine, PolicyError};

use crate::common::{data, input, sample_inputs};
use crate::fake_opa::{FakeOpa, Options};

const PATH: &str = "docketops/policy/decision";
const TIMEOUT: Duration = Duration::from_secs(5);

fn client(server: &FakeOpa) -> OpaClient {
    OpaClient::new(&server.url, PATH, TIMEOUT).expect("client")
}

#[tokio::test]
async fn the_same_decisions_as_the_embedded_engine() {
    let embedded = EmbeddedEngine::default_policy().expect("loads");
    let options = Options {
        decision_ids: true,
        bundle_revision: Some(embedded.revision().to_string()),
    };
    let server = FakeOpa::start(embedded.clone(), options).await;
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
    server.stop().await;
}

#[tokio::test]
async fn revision_and_decision_id_without_help_from_the_server() {
    let server = FakeOpa::start(EmbeddedEngine::default_policy().expect("loads"), Options::default()).await;
    let document = input("agent", "SCALE", "MEDIUM", Some("load test"));
    let decision = client(&server).decide(&document).await.expect("opa");
    assert_eq!(decision.revision, "opa");
    assert!(decision.decision_id.starts_with("dec_"), "{}", decision.decision_id);
    let configured = client(&server).with_revision("git:0123abcd");
    assert_eq!(
        configured.decide(&document).await.expect("opa").revision,
        "git:0123abcd"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_undefined_path_is_undefined() {
    let server = FakeOpa::start(EmbeddedEngine::default_policy().expect("loads"), Options::default()).await;
    let opa = OpaClient::new(&server.url, "docketops/policy/nothing", TIMEOUT).expect("client");
    let error = opa
        .decide(&input("human", "GET", "LOW", None))
        .await
        .expect_err("undefined");
    assert!(matches!(error, PolicyError::Undefined), "{error}");
    server.stop().await;

    // Defined path, undefined value for this input.
    let engine = EmbeddedEngine::from_files(&[data("undefined_decision.rego")]).expect("loads");
    let server = FakeOpa::start(engine, Options::default()).await;
    let error = client(&server)
        .decide(&input("human", "GET", "LOW", None))
        .await
        .expect_err("undefined");
    assert!(matches!(error, PolicyError::Undefined), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn a_malformed_result_from_opa_is_malformed() {
    let engine = EmbeddedEngine::from_files(&[data("malformed_outcome.rego")]).expect("loads");
    let server = FakeOpa::start(engine, Options::default()).await;
    let error = client(&server)
        .decide(&input("human", "GET", "LOW", None))
        .await
        .expect_err("refused");
    assert!(matches!(error, PolicyError::Malformed(_)), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn an_opa_error_response_is_unavailable_with_its_message() {
    let engine = EmbeddedEngine::from_files(&[data("evaluation_error.rego")]).expect("loads");
    let server = FakeOpa::start(engine, Options::default()).await;
    let error = client(&server)
        .decide(&input("human", "GET", "LOW", None))
        .await
        .expect_err("refused");
    let PolicyError::Unavailable(text) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(
        text.contains("500") && text.contains("internal_error") && text.contains("to_number"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_stopped_server_is_unavailable() {
    let server = FakeOpa::start(EmbeddedEngine::default_policy().expect("loads"), Options::default()).await;
    let opa = client(&server);
    let document = input("agent", "SCALE", "MEDIUM", Some("load test"));
    opa.decide(&document).await.expect("running");
    let url = server.url.clone();
    server.stop().await;
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
    let server = FakeOpa::start(EmbeddedEngine::default_policy().expect("loads"), Options::default()).await;
    let engine = PolicyEngine::Opa(client(&server));
    let decision = engine
        .decide(&input("human", "DELETE", "HIGH", Some("x")))
        .await
        .expect("opa");
    assert_eq!(decision.outcome, Outcome::RequireApproval);
    let text = engine.describe();
    assert!(text.contains(&server.url) && text.contains(PATH), "{text}");
    server.stop().await;
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

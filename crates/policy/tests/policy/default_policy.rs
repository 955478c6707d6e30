use std::sync::Arc;

use policy::{Decision, EmbeddedEngine, Outcome, PolicyEngine};
use serde_json::json;

use crate::common::{data, input};

fn decide(input: serde_json::Value) -> Decision {
    let engine = EmbeddedEngine::default_policy().expect("the default policy loads");
    engine.decide(&input).expect("the default policy decides")
}

#[test]
fn low_and_medium_risk_are_allowed() {
    let decision = decide(input("agent", "SCALE", "MEDIUM", Some("load test")));
    assert_eq!(decision.outcome, Outcome::Allow);
    assert_eq!(decision.reasons, ["MEDIUM risk within scope"]);

    let decision = decide(input("human", "GET", "LOW", None));
    assert_eq!(decision.outcome, Outcome::Allow);
    assert_eq!(decision.reasons, ["LOW risk within scope"]);
}

#[test]
fn high_risk_requires_an_approval() {
    let decision = decide(input("human", "DELETE", "HIGH", Some("decommission")));
    assert_eq!(decision.outcome, Outcome::RequireApproval);
    assert_eq!(decision.reasons, ["HIGH risk actions need an approval"]);
}

#[test]
fn an_agent_mutating_without_justification_is_denied() {
    for justification in [None, Some(""), Some("  \t ")] {
        let decision = decide(input("agent", "SCALE", "MEDIUM", justification));
        assert_eq!(decision.outcome, Outcome::Deny, "{justification:?}");
        assert_eq!(decision.reasons, ["mutations by agents need a justification"]);
    }
    // Not a string is no justification either (and no builtin error).
    let mut document = input("agent", "PATCH", "LOW", None);
    document["action"]["justification"] = json!(null);
    assert_eq!(decide(document).outcome, Outcome::Deny);
}

#[test]
fn deny_beats_require_approval_and_keeps_only_its_reasons() {
    let decision = decide(input("agent", "DELETE", "HIGH", None));
    assert_eq!(decision.outcome, Outcome::Deny);
    assert_eq!(decision.reasons, ["mutations by agents need a justification"]);
}

#[test]
fn reads_and_humans_need_no_justification() {
    assert_eq!(decide(input("agent", "LIST", "LOW", None)).outcome, Outcome::Allow);
    assert_eq!(decide(input("human", "SCALE", "MEDIUM", None)).outcome, Outcome::Allow);
    // An unknown action type counts as a mutation, never as a read.
    assert_eq!(decide(input("agent", "EXEC", "MEDIUM", None)).outcome, Outcome::Deny);
}

#[test]
fn a_missing_or_unknown_risk_level_asks_for_an_approval() {
    let decision = decide(input("human", "SCALE", "EXTREME", None));
    assert_eq!(decision.outcome, Outcome::RequireApproval);
    assert_eq!(decision.reasons, ["missing or unknown risk level needs an approval"]);
    let mut document = input("human", "SCALE", "LOW", None);
    document.as_object_mut().expect("object").remove("risk");
    assert_eq!(decide(document).outcome, Outcome::RequireApproval);
}

#[test]
fn decision_metadata() {
    let engine = EmbeddedEngine::default_policy().expect("loads");
    let document = input("agent", "SCALE", "MEDIUM", Some("load test"));
    let first = engine.decide(&document).expect("decides");
    let second = engine.decide(&document).expect("decides");
    assert_eq!(first.policy, "docketops.policy");
    assert_eq!(first.engine, "embedded");
    assert_eq!(first.revision, engine.revision());
    assert!(
        first.decision_id.starts_with("dec_") && first.decision_id.len() == 36,
        "{}",
        first.decision_id
    );
    assert_ne!(first.decision_id, second.decision_id);
    let value = serde_json::to_value(&first).expect("serializes");
    assert_eq!(value["outcome"], "allow");
    for field in ["reasons", "policy", "revision", "decision_id", "input_sha256", "engine"] {
        assert!(value.get(field).is_some(), "{field}");
    }
}

#[test]
fn the_shipped_file_is_the_embedded_default() {
    let from_file = EmbeddedEngine::from_files(&[std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/default.rego"
    ))])
    .expect("loads");
    let embedded = EmbeddedEngine::default_policy().expect("loads");
    assert_eq!(from_file.revision(), embedded.revision());
}

#[test]
fn the_example_input_file_is_allowed() {
    let text = std::fs::read_to_string(data("input.json")).expect("fixture");
    let document: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(decide(document).outcome, Outcome::Allow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_decide_at_once() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let engine = Arc::new(PolicyEngine::Embedded(EmbeddedEngine::default_policy().expect("loads")));
    assert_send_sync(&engine);
    let inputs = crate::common::sample_inputs();
    let expected: Vec<Decision> = {
        let mut expected = Vec::new();
        for document in &inputs {
            expected.push(engine.decide(document).await.expect("decides"));
        }
        expected
    };
    let mut tasks = Vec::new();
    for task in 0..32 {
        let engine = engine.clone();
        let inputs = inputs.clone();
        let expected = expected.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..50 {
                let index = (task + round) % inputs.len();
                let decision = engine.decide(&inputs[index]).await.expect("decides");
                assert_eq!(decision.outcome, expected[index].outcome);
                assert_eq!(decision.reasons, expected[index].reasons);
                assert_eq!(decision.input_sha256, expected[index].input_sha256);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
}

#[test]
fn describe_names_the_engine() {
    let engine = PolicyEngine::Embedded(EmbeddedEngine::default_policy().expect("loads"));
    let text = engine.describe();
    assert!(
        text.contains("embedded") && text.contains("default.rego") && text.contains("sha256:"),
        "{text}"
    );
}

use policy::EmbeddedEngine;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::input;

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[test]
fn the_input_hash_is_sha256_of_the_canonical_json() {
    let engine = EmbeddedEngine::default_policy().expect("loads");
    for document in crate::common::sample_inputs() {
        let decision = engine.decide(&document).expect("decides");
        let canonical = serde_json_canonicalizer::to_vec(&document).expect("canonical");
        assert_eq!(decision.input_sha256, sha256(&canonical));
    }
}

#[test]
fn the_input_hash_matches_hand_written_canonical_bytes() {
    // Keys out of order, white space and an escaped character: none of it reaches the hash.
    let text = r#"{ "time": "2026-11-27T10:00:00Z", "risk": {"rules": ["baseline"], "level": "LOW"},
        "preview": null,
        "action": {"resource_name": "web\u002dapi", "namespace": "staging", "action_type": "GET",
                   "resource_kind": "Deployment", "parameters": {}},
        "identity": {"trust_score": 0, "scopes": [], "roles": ["auditor"], "name": "Zoë", "kind": "human", "id": "usr_1"} }"#;
    let canonical = concat!(
        r#"{"action":{"action_type":"GET","namespace":"staging","parameters":{},"resource_kind":"Deployment","#,
        r#""resource_name":"web-api"},"identity":{"id":"usr_1","kind":"human","name":"Zoë","roles":["auditor"],"#,
        r#""scopes":[],"trust_score":0},"preview":null,"risk":{"level":"LOW","rules":["baseline"]},"#,
        r#""time":"2026-11-27T10:00:00Z"}"#
    );
    let document: serde_json::Value = serde_json::from_str(text).expect("JSON");
    let decision = EmbeddedEngine::default_policy()
        .expect("loads")
        .decide(&document)
        .expect("decides");
    assert_eq!(decision.input_sha256, sha256(canonical.as_bytes()));
}

#[test]
fn the_same_input_gives_the_same_outcome_and_hash() {
    let engine = EmbeddedEngine::default_policy().expect("loads");
    for document in crate::common::sample_inputs() {
        let first = engine.decide(&document).expect("decides");
        // Re-parsed from text, and through a fresh engine: nothing but the input matters.
        let reparsed: serde_json::Value = serde_json::from_str(&document.to_string()).expect("JSON");
        let again = EmbeddedEngine::default_policy()
            .expect("loads")
            .decide(&reparsed)
            .expect("decides");
        assert_eq!(
            (first.outcome, &first.reasons, &first.input_sha256),
            (again.outcome, &again.reasons, &again.input_sha256)
        );
        assert_eq!(first.revision, again.revision);
    }
    let a = engine
        .decide(&input("agent", "SCALE", "LOW", Some("a")))
        .expect("decides");
    let b = engine
        .decide(&input("agent", "SCALE", "LOW", Some("b")))
        .expect("decides");
    assert_ne!(a.input_sha256, b.input_sha256);
}

#[test]
fn the_revision_is_the_hash_of_the_sorted_policy_texts() {
    let engine = EmbeddedEngine::default_policy().expect("loads");
    let canonical = serde_json_canonicalizer::to_vec(&json!([policy::DEFAULT_POLICY])).expect("canonical");
    assert_eq!(engine.revision(), sha256(&canonical));
}

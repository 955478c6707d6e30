use std::path::PathBuf;
use std::time::{Duration, Instant};

use policy::{EmbeddedEngine, Outcome, PolicyError};

use crate::common::{data, input};

fn load(names: &[&str]) -> Result<EmbeddedEngine, PolicyError> {
    let paths: Vec<PathBuf> = names.iter().map(|name| data(name)).collect();
    EmbeddedEngine::from_files(&paths)
}

#[test]
fn custom_files_replace_the_default_policy() {
    let engine = load(&["custom_lib.rego", "custom_policy.rego"]).expect("loads");
    // The default would require an approval for HIGH risk; the custom policy only looks at namespaces.
    let decision = engine.decide(&input("human", "DELETE", "HIGH", None)).expect("decides");
    assert_eq!(decision.outcome, Outcome::Allow);
    assert_eq!(decision.reasons, ["staging-like namespace"]);

    let mut document = input("agent", "SCALE", "LOW", Some("why not"));
    document["action"]["namespace"] = "prod".into();
    let decision = engine.decide(&document).expect("decides");
    assert_eq!(decision.outcome, Outcome::Deny);
    assert_eq!(decision.reasons, ["namespace prod is not staging-like"]);

    let default = EmbeddedEngine::default_policy().expect("loads");
    assert_ne!(engine.revision(), default.revision());
    assert_eq!(decision.revision, engine.revision());
    // The same texts in another order (or under other names) are the same revision.
    let reversed = load(&["custom_policy.rego", "custom_lib.rego"]).expect("loads");
    assert_eq!(reversed.revision(), engine.revision());
}

#[test]
fn an_unknown_outcome_is_malformed() {
    let engine = load(&["malformed_outcome.rego"]).expect("loads");
    let error = engine.decide(&input("human", "GET", "LOW", None)).expect_err("refused");
    assert!(
        matches!(&error, PolicyError::Malformed(text) if text.contains("\"maybe\"")),
        "{error}"
    );
}

#[test]
fn reasons_that_are_not_strings_are_malformed() {
    let engine = load(&["malformed_reasons.rego"]).expect("loads");
    let error = engine.decide(&input("human", "GET", "LOW", None)).expect_err("refused");
    assert!(
        matches!(&error, PolicyError::Malformed(text) if text.contains("strings")),
        "{error}"
    );
}

#[test]
fn a_missing_rule_is_undefined() {
    let engine = load(&["no_decision.rego"]).expect("loads");
    let error = engine.decide(&input("human", "GET", "LOW", None)).expect_err("refused");
    assert!(matches!(error, PolicyError::Undefined), "{error}");
    // A policy in another package altogether: the same.
    let engine = load(&["custom_lib.rego"]).expect("loads");
    assert!(matches!(
        engine.decide(&input("human", "GET", "LOW", None)),
        Err(PolicyError::Undefined)
    ));
}

#[test]
fn the_entry_rule_may_be_declared_from_a_parent_package() {
    let sources = vec![(
        "ref_head.rego".to_string(),
        "package docketops\nimport rego.v1\npolicy.decision := {\"outcome\": \"deny\", \"reasons\": [\"nope\"]}\n"
            .to_string(),
    )];
    let engine = EmbeddedEngine::from_sources(sources).expect("loads");
    let decision = engine.decide(&input("human", "GET", "LOW", None)).expect("decides");
    assert_eq!(
        (decision.outcome, decision.reasons),
        (Outcome::Deny, vec!["nope".to_string()])
    );
}

#[test]
fn a_rule_without_a_value_for_this_input_is_undefined() {
    let engine = load(&["undefined_decision.rego"]).expect("loads");
    let error = engine.decide(&input("human", "GET", "LOW", None)).expect_err("refused");
    assert!(matches!(error, PolicyError::Undefined), "{error}");
    let mut document = input("human", "GET", "LOW", None);
    document["approved_by_magic"] = true.into();
    assert_eq!(engine.decide(&document).expect("decides").outcome, Outcome::Allow);
}

#[test]
fn a_syntax_error_is_a_load_error_naming_the_file() {
    let error = load(&["custom_lib.rego", "syntax_error.rego"]).expect_err("refused");
    assert!(
        matches!(&error, PolicyError::Load(text) if text.contains("syntax_error.rego")),
        "{error}"
    );
}

#[test]
fn unsafe_rules_are_refused_at_load_time() {
    let sources = vec![(
        "unsafe.rego".to_string(),
        "package docketops.policy\nimport rego.v1\ndecision := {\"outcome\": x, \"reasons\": []} if { y }\n"
            .to_string(),
    )];
    let error = EmbeddedEngine::from_sources(sources).expect_err("refused");
    assert!(
        matches!(&error, PolicyError::Load(text) if text.contains("unsafe")),
        "{error}"
    );
}

#[test]
fn unreadable_or_no_files_are_load_errors() {
    let error = load(&["does_not_exist.rego"]).expect_err("refused");
    assert!(
        matches!(&error, PolicyError::Load(text) if text.contains("does_not_exist.rego")),
        "{error}"
    );
    assert!(matches!(EmbeddedEngine::from_files(&[]), Err(PolicyError::Load(_))));
    let twice = load(&["custom_lib.rego", "custom_lib.rego"]).expect_err("refused");
    assert!(matches!(twice, PolicyError::Load(_)), "{twice}");
}

#[test]
fn a_failing_builtin_is_an_evaluation_error() {
    let engine = load(&["evaluation_error.rego"]).expect("loads");
    let error = engine.decide(&input("human", "GET", "LOW", None)).expect_err("refused");
    assert!(
        matches!(&error, PolicyError::Evaluation(text) if text.contains("to_number")),
        "{error}"
    );
}

#[test]
fn a_runaway_policy_is_stopped_by_the_time_limit() {
    let engine = load(&["slow.rego"]).expect("loads");
    let started = Instant::now();
    let error = engine.decide(&input("human", "GET", "LOW", None)).expect_err("refused");
    assert!(
        matches!(&error, PolicyError::Evaluation(text) if text.contains("time limit")),
        "{error}"
    );
    assert!(started.elapsed() < policy::engine::EVALUATION_TIME_LIMIT + Duration::from_secs(2));
}

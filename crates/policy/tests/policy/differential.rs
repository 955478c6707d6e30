//! The embedded engine (regorus) and real OPA (OPA's Go engine behind tools/opa-rest/server.py) decide the
//! same: the shipped default policy, and each shipped template (with its example parameters and other
//! parameter sets) next to it, on a generated corpus of gateway-shaped inputs (`corpus.rs`, fixed seed). The
//! whole decision document must match (outcome, reasons, approvals, approval groups), or both must be
//! undefined, or both must fail. Each policy's corpus must reach allow, deny and require_approval, and a
//! template must both change some decisions of the default policy and leave others alone, so a corpus that
//! stopped exercising a policy fails here too.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use policy::templates::Library;
use policy::{EmbeddedEngine, PolicyError};
use serde_json::{Value, json};

use crate::common::input;
use crate::corpus;
use crate::real_opa::{Options, RealOpa};

const PATH: &str = "docketops/policy/decision";
const SEED: u64 = 0x00d0_c4e7_0b5e_ed01;
const CORPUS_SIZE: usize = 1000;

/// What one engine answered for one input, comparable across engines.
fn embedded_answer(engine: &EmbeddedEngine, input: &Value) -> Value {
    // The embedded engine's time limit is wall-clock time: on a loaded machine (two cores, the other tests'
    // OPA servers) an evaluation can be descheduled past it. That says nothing about the policy's meaning, so
    // it is asked again (a policy that is really too slow runs out of time every time).
    let mut attempts = 0;
    loop {
        attempts += 1;
        match engine.evaluate(input) {
            Ok(result) => return json!({"result": result}),
            Err(PolicyError::Undefined) => return json!("undefined"),
            Err(error) if attempts < 3 && error.to_string().contains("time limit") => continue,
            Err(error) => return json!({"error": error.to_string()}),
        }
    }
}

fn opa_answer(answer: Value) -> Value {
    match answer {
        Value::Object(mut fields) => match (fields.remove("result"), fields.remove("code")) {
            (Some(result), _) => json!({"result": result}),
            (None, Some(_)) => json!({"error": Value::Object(fields)}),
            (None, None) => json!("undefined"),
        },
        other => panic!("OPA answered {other}"),
    }
}

fn same(embedded: &Value, opa: &Value) -> bool {
    // Errors match on being errors: the two engines word them differently.
    match (embedded.get("error"), opa.get("error")) {
        (Some(_), Some(_)) => true,
        _ => embedded == opa,
    }
}

fn outcome(answer: &Value) -> String {
    match answer.pointer("/result/outcome") {
        Some(Value::String(outcome)) => outcome.clone(),
        _ if answer.get("error").is_some() => "error".into(),
        _ => "undefined".into(),
    }
}

/// One policy: the default policy and the rendered templates, as `serve --policy … --policy …` loads them.
struct Policy {
    name: String,
    sources: Vec<(String, String)>,
}

fn default_policy() -> Policy {
    Policy {
        name: "default".into(),
        sources: vec![("default.rego".into(), policy::DEFAULT_POLICY.into())],
    }
}

fn with_templates(name: &str, templates: &[(&str, Value)]) -> Policy {
    let library = Library::shipped().expect("the shipped templates parse");
    let mut policy = default_policy();
    policy.name = name.to_string();
    for (index, (template, parameters)) in templates.iter().enumerate() {
        let Value::Object(parameters) = parameters else {
            panic!("parameters must be an object: {parameters}");
        };
        let instance = format!("{}_{index}", template.replace('-', "_"));
        let rendered = library
            .find(template)
            .expect("shipped")
            .render(parameters, Some(&instance))
            .unwrap_or_else(|error| panic!("{template} renders: {error}"));
        policy.sources.push((format!("{instance}.rego"), rendered.text));
    }
    policy
}

fn example(template: &str) -> Value {
    let library = Library::shipped().expect("the shipped templates parse");
    Value::Object(library.find(template).expect("shipped").example.clone())
}

/// Decides the corpus in both engines; panics with every mismatch; returns the count of each outcome.
async fn compare(policy: &Policy, inputs: &[Value]) -> (BTreeMap<String, usize>, Vec<Value>) {
    let embedded = EmbeddedEngine::from_sources(policy.sources.clone()).expect("the policy loads in regorus");
    let server = RealOpa::start(&policy.sources, Options::default());
    // Both engines at once: regorus on a blocking thread while OPA works through the batch.
    let corpus = inputs.to_vec();
    let ours = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let answers: Vec<Value> = corpus.iter().map(|input| embedded_answer(&embedded, input)).collect();
        (answers, started.elapsed())
    });
    let started = std::time::Instant::now();
    let answers = server.batch(PATH, inputs).await;
    let opa_time = started.elapsed();
    server.stop();
    let (ours, embedded_time) = ours.await.expect("regorus evaluates");
    let mut counts = BTreeMap::new();
    let mut mismatches = Vec::new();
    let mut decided = Vec::with_capacity(inputs.len());
    for ((input, ours), answer) in inputs.iter().zip(ours).zip(answers) {
        let theirs = opa_answer(answer);
        if !same(&ours, &theirs) {
            mismatches.push(format!("input: {input}\n  regorus: {ours}\n  OPA:     {theirs}"));
        }
        *counts.entry(outcome(&theirs)).or_insert(0) += 1;
        decided.push(theirs);
    }
    eprintln!(
        "{}: {} inputs, OPA {opa_time:?}, regorus {embedded_time:?}, outcomes {counts:?}",
        policy.name,
        inputs.len(),
    );
    assert!(
        mismatches.is_empty(),
        "{}: {} of {} inputs decided differently:\n{}",
        policy.name,
        mismatches.len(),
        inputs.len(),
        mismatches.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
    (counts, decided)
}

fn assert_every_outcome(policy: &Policy, counts: &BTreeMap<String, usize>) {
    for outcome in ["allow", "deny", "require_approval"] {
        assert!(
            counts.get(outcome).copied().unwrap_or(0) > 0,
            "{}: the corpus never reaches {outcome}: {counts:?}",
            policy.name
        );
    }
    for outcome in ["error", "undefined"] {
        assert_eq!(counts.get(outcome), None, "{}: {counts:?}", policy.name);
    }
}

/// The corpus, and the default policy's own decisions on it (regorus), made once for all tests.
fn corpus_and_default_decisions() -> &'static (Vec<Value>, Vec<Value>) {
    static MADE: OnceLock<(Vec<Value>, Vec<Value>)> = OnceLock::new();
    MADE.get_or_init(|| {
        let inputs = corpus::inputs(SEED, CORPUS_SIZE);
        let base = EmbeddedEngine::default_policy().expect("loads");
        let decided = inputs.iter().map(|input| embedded_answer(&base, input)).collect();
        (inputs, decided)
    })
}

/// Checks policies of one template (or several) against the default policy's own decisions.
async fn check_templates(policies: Vec<Policy>) {
    let (inputs, before) = corpus_and_default_decisions();
    for policy in policies {
        let (counts, decided) = compare(&policy, inputs).await;
        assert_every_outcome(&policy, &counts);
        let changed = before.iter().zip(&decided).filter(|(a, b)| a != b).count();
        assert!(
            changed > 0 && changed < inputs.len(),
            "{}: the template changes {changed} of {} default decisions; the corpus must reach both its branches",
            policy.name,
            inputs.len()
        );
    }
}

#[tokio::test]
async fn the_default_policy() {
    let (inputs, _) = corpus_and_default_decisions();
    let policy = default_policy();
    let (counts, _) = compare(&policy, inputs).await;
    assert_every_outcome(&policy, &counts);
}

#[tokio::test]
async fn change_window() {
    check_templates(vec![
        with_templates(
            "change-window (example)",
            &[("change-window", example("change-window"))],
        ),
        with_templates(
            "change-window (across midnight, approval)",
            &[(
                "change-window",
                json!({"weekdays": ["fri", "sat"], "start_hour": 22, "end_hour": 6, "outside": "require_approval",
                       "namespaces": ["prod-*", "production"]}),
            )],
        ),
        with_templates(
            "change-window (all day on weekdays)",
            &[("change-window", json!({"start_hour": 0, "end_hour": 0}))],
        ),
    ])
    .await;
}

#[tokio::test]
async fn image_registry_allowlist() {
    check_templates(vec![
        with_templates(
            "image-registry-allowlist (example)",
            &[("image-registry-allowlist", example("image-registry-allowlist"))],
        ),
        with_templates(
            "image-registry-allowlist (Docker Hub library, localhost, staging)",
            &[(
                "image-registry-allowlist",
                json!({"registries": ["docker.io/library", "localhost:5000", "GHCR.IO/acme/"], "namespaces": ["staging"]}),
            )],
        ),
    ])
    .await;
}

#[tokio::test]
async fn max_replicas() {
    check_templates(vec![
        with_templates("max-replicas (example)", &[("max-replicas", example("max-replicas"))]),
        with_templates(
            "max-replicas (max 0, limits)",
            &[(
                "max-replicas",
                json!({"max": 0, "limits": {"staging": 5, "prod-eu": 100}}),
            )],
        ),
        // Without `max` (no limit outside `limits`): the template reads it with object.get, since OPA's type
        // checker refuses `params.max` when the rendered `params` has no such key.
        with_templates(
            "max-replicas (limits only)",
            &[("max-replicas", json!({"limits": {"staging": 5}}))],
        ),
    ])
    .await;
}

#[tokio::test]
async fn no_deletes_in_namespaces() {
    check_templates(vec![
        with_templates(
            "no-deletes-in-namespaces (example)",
            &[("no-deletes-in-namespaces", example("no-deletes-in-namespaces"))],
        ),
        with_templates(
            "no-deletes-in-namespaces (everywhere, some kinds)",
            &[(
                "no-deletes-in-namespaces",
                json!({"namespaces": ["*"], "kinds": ["Pod", "Service"]}),
            )],
        ),
    ])
    .await;
}

#[tokio::test]
async fn no_privileged_pods() {
    check_templates(vec![
        with_templates(
            "no-privileged-pods (example)",
            &[("no-privileged-pods", example("no-privileged-pods"))],
        ),
        with_templates(
            "no-privileged-pods (host paths allowed, production)",
            &[(
                "no-privileged-pods",
                json!({"allow_host_path": true, "namespaces": ["production", "prod-*"]}),
            )],
        ),
    ])
    .await;
}

#[tokio::test]
async fn read_only_agents() {
    check_templates(vec![
        with_templates(
            "read-only-agents (example)",
            &[("read-only-agents", example("read-only-agents"))],
        ),
        with_templates(
            "read-only-agents (all agents)",
            &[("read-only-agents", json!({"all_agents": true}))],
        ),
    ])
    .await;
}

#[tokio::test]
async fn two_approvals_for_high() {
    check_templates(vec![
        with_templates(
            "two-approvals-for-high (example)",
            &[("two-approvals-for-high", example("two-approvals-for-high"))],
        ),
        with_templates(
            "two-approvals-for-high (defaults)",
            &[("two-approvals-for-high", json!({}))],
        ),
        with_templates(
            "two-approvals-for-high (3 for MEDIUM and HIGH, and 2 by group)",
            &[
                (
                    "two-approvals-for-high",
                    json!({"count": 3, "levels": ["MEDIUM", "HIGH"]}),
                ),
                (
                    "two-approvals-for-high",
                    json!({"groups": ["sre", "security"], "namespaces": ["prod-*"]}),
                ),
            ],
        ),
    ])
    .await;
}

#[tokio::test]
async fn every_template_together() {
    let library = Library::shipped().expect("the shipped templates parse");
    let all: Vec<(&str, Value)> = library
        .templates()
        .iter()
        .map(|template| (template.name.as_str(), Value::Object(template.example.clone())))
        .collect();
    check_templates(vec![with_templates("every template (examples)", &all)]).await;
}

/// `document` without the fields at these JSON pointers (those it has).
fn without(mut document: Value, pointers: &[&str]) -> Value {
    for pointer in pointers {
        let (parent, field) = pointer.rsplit_once('/').expect("a JSON pointer");
        if let Some(Value::Object(fields)) = document.pointer_mut(parent) {
            fields.remove(field);
        }
    }
    document
}

/// Inputs without an action type, a risk level or a justification: the two engines decide them alike, and
/// fail-safe. OPA evaluates a negated call or membership test on a missing field (`not input.risk.level in
/// {…}`) as undefined, not true (it binds the call's arguments outside the `not`: open-policy-agent/opa#1877,
/// #4743), while regorus evaluates it as true; the shipped policies negate helper rules instead
/// (`known_level if input.risk.level in {…}`, then `not known_level`), which both evaluate alike. The corpus
/// leaves these fields out now and then too; this test pins the outcomes.
#[tokio::test]
async fn inputs_with_missing_fields() {
    const TYPE: &str = "/action/action_type";
    const LEVEL: &str = "/risk/level";
    const JUSTIFICATION: &str = "/action/justification";
    let cases = [
        // An agent's action without a type is a mutation, and without a justification it is denied.
        (without(input("agent", "SCALE", "LOW", None), &[TYPE]), "deny"),
        (without(input("agent", "GET", "LOW", None), &[TYPE]), "deny"),
        (
            without(input("agent", "SCALE", "LOW", None), &[TYPE, LEVEL, JUSTIFICATION]),
            "deny",
        ),
        // Without a risk level: an approval, never allow.
        (
            without(input("human", "SCALE", "LOW", Some("load test")), &[LEVEL]),
            "require_approval",
        ),
        (
            without(input("agent", "GET", "LOW", None), &[LEVEL]),
            "require_approval",
        ),
        (
            without(input("agent", "SCALE", "MEDIUM", Some("x")), &[TYPE, LEVEL]),
            "require_approval",
        ),
        // A justified agent's action without a type is decided on its risk, as any mutation.
        (
            without(input("agent", "SCALE", "LOW", Some("load test")), &[TYPE]),
            "allow",
        ),
        (
            without(input("agent", "SCALE", "HIGH", Some("load test")), &[TYPE]),
            "require_approval",
        ),
        // The justification rule is for agents.
        (without(input("human", "DELETE", "MEDIUM", None), &[TYPE]), "allow"),
    ];
    let inputs: Vec<Value> = cases.iter().map(|(input, _)| input.clone()).collect();
    let (_, decided) = compare(&default_policy(), &inputs).await;
    for ((input, expected), answer) in cases.iter().zip(&decided) {
        assert_eq!(outcome(answer), *expected, "{input}: {answer}");
    }

    // The templates that read the action type take an action without one for a mutation too, with a reason.
    let policy = with_templates(
        "read-only agents, a change window closed but on Saturdays",
        &[
            ("read-only-agents", json!({"all_agents": true})),
            ("change-window", json!({"weekdays": ["sat"]})),
        ],
    );
    let (_, decided) = compare(&policy, &inputs).await;
    for (input, answer) in inputs.iter().zip(&decided) {
        if input.pointer(TYPE).is_none() {
            assert_eq!(outcome(answer), "deny", "{input}: {answer}");
            let reasons = answer.pointer("/result/reasons").expect("reasons").to_string();
            assert!(
                reasons.contains("an action without a type is outside the change window"),
                "{reasons}"
            );
        }
    }
}

/// No shipped policy negates a call or a membership test that reads the input (see above): after a `not`, an
/// expression that mentions `input` is a plain reference.
#[test]
fn shipped_policies_negate_no_call_on_the_input() {
    let library = Library::shipped().expect("the shipped templates parse");
    let mut sources = vec![("default.rego".to_string(), policy::DEFAULT_POLICY.to_string())];
    for template in library.templates() {
        sources.push((format!("{}.rego", template.name), template.source().to_string()));
    }
    let mut found = Vec::new();
    for (name, text) in &sources {
        for (number, line) in text.lines().enumerate() {
            if negates_a_call_on_the_input(line) {
                found.push(format!("{name}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "negate a helper rule instead:\n{}", found.join("\n"));
    // The check finds what it looks for, and only that.
    for line in [
        "mutation if not input.action.action_type in read_action_types",
        "\tnot input.risk.level in {\"LOW\", \"MEDIUM\"}",
        "\tnot startswith(input.action.namespace, \"kube-\")",
    ] {
        assert!(negates_a_call_on_the_input(line), "{line}");
    }
    for line in [
        "mutation if not read_action",
        "\tnot allowed(image)",
        "\tnot params.allow_host_path",
        "deny_reasons contains sprintf(\"%s is not (in input)\", [x]) if { # not input.x in y",
    ] {
        assert!(!negates_a_call_on_the_input(line), "{line}");
    }
}

/// A `not` before a call or a membership test (`in`) on something that reads `input`.
fn negates_a_call_on_the_input(line: &str) -> bool {
    let code = code_of(line);
    let negated = code
        .strip_prefix("not ")
        .or_else(|| code.split_once(" not ").map(|(_, rest)| rest));
    negated.is_some_and(|negated| negated.contains("input") && (negated.contains('(') || negated.contains(" in ")))
}

/// A line of Rego without its comment, the text of its strings, and surrounding white space.
fn code_of(line: &str) -> String {
    let mut code = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for character in line.chars() {
        match (in_string, character) {
            (true, _) if escaped => escaped = false,
            (true, '\\') => escaped = true,
            (true, '"') => {
                in_string = false;
                code.push('"');
            }
            (true, _) => {}
            (false, '"') => {
                in_string = true;
                code.push('"');
            }
            (false, '#') => break,
            (false, _) => code.push(character),
        }
    }
    code.trim().to_string()
}

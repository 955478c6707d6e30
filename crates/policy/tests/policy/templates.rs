//! Policy templates: every shipped template rendered and loaded next to the default policy, with inputs it
//! leaves alone and inputs it denies (or sends for approvals); schema errors; hostile parameter values;
//! several templates and instances together; custom template files.

use policy::templates::{Library, Rendered, Schema, TemplateError};
use policy::{Decision, EmbeddedEngine, Outcome, PolicyError};
use serde_json::{Map, Value, json};

use crate::common::input;

fn library() -> Library {
    Library::shipped().expect("the shipped templates parse")
}

fn params(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("parameters must be an object, got {other}"),
    }
}

fn render(name: &str, given: Value) -> Rendered {
    render_as(name, given, None)
}

fn render_as(name: &str, given: Value, instance: Option<&str>) -> Rendered {
    library()
        .find(name)
        .expect("shipped")
        .render(&params(given), instance)
        .unwrap_or_else(|error| panic!("{name} renders: {error}"))
}

/// The default policy and the rendered templates, as `serve --policy default.rego --policy …` loads them.
fn engine(rendered: &[&Rendered]) -> EmbeddedEngine {
    let mut sources = vec![("default.rego".to_string(), policy::DEFAULT_POLICY.to_string())];
    for one in rendered {
        sources.push((format!("{}.rego", one.instance), one.text.clone()));
    }
    EmbeddedEngine::from_sources(sources).expect("default + templates load")
}

fn decide(engine: &EmbeddedEngine, document: &Value) -> Decision {
    engine.decide(document).expect("decides")
}

/// An agent's action with a justification, MEDIUM risk (allowed by the default policy).
fn action(action_type: &str, namespace: &str, parameters: Value) -> Value {
    let mut document = input("agent", action_type, "MEDIUM", Some("ticket 42"));
    document["action"]["namespace"] = json!(namespace);
    document["action"]["parameters"] = parameters;
    document
}

fn with(mut document: Value, pointer: &str, value: Value) -> Value {
    *document.pointer_mut(pointer).expect("pointer exists") = value;
    document
}

fn assert_allowed(engine: &EmbeddedEngine, document: &Value) {
    let decision = decide(engine, document);
    assert_eq!(decision.outcome, Outcome::Allow, "{document}: {:?}", decision.reasons);
}

fn assert_denied(engine: &EmbeddedEngine, document: &Value, reason: &str) {
    let decision = decide(engine, document);
    assert_eq!(decision.outcome, Outcome::Deny, "{document}: {:?}", decision.reasons);
    assert!(
        decision.reasons.iter().any(|r| r.contains(reason)),
        "{reason:?} not in {:?}",
        decision.reasons
    );
}

// ---- the library -----------------------------------------------------------------------------------------

#[test]
fn every_shipped_template_parses_documents_itself_and_renders_its_example() {
    let library = library();
    let names: Vec<&str> = library.templates().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "change-window",
            "image-registry-allowlist",
            "max-replicas",
            "no-deletes-in-namespaces",
            "no-privileged-pods",
            "read-only-agents",
            "two-approvals-for-high",
        ]
    );
    for template in library.templates() {
        assert!(
            !template.title.is_empty() && template.description.len() > 40,
            "{}",
            template.name
        );
        assert!(!template.example.is_empty(), "{} has an example", template.name);
        for parameter in &template.parameters {
            assert!(
                !parameter.description.is_empty(),
                "{}.{}",
                template.name,
                parameter.name
            );
        }
        let rendered = template.render(&template.example, None).expect("the example renders");
        assert_eq!(rendered.instance, template.name.replace('-', "_"));
        assert!(
            rendered
                .text
                .contains(&format!("package docketops.templates.{}\n", rendered.instance))
        );
        assert!(
            rendered.text.contains(&template.digest()),
            "the rendering names its template"
        );
        // The rendered file is self-contained: it loads with the default policy and decides every sample.
        let engine = engine(&[&rendered]);
        for document in crate::common::sample_inputs() {
            engine.decide(&document).expect("decides");
        }
    }
}

#[test]
fn without_templates_the_default_decisions_are_unchanged() {
    let engine = EmbeddedEngine::default_policy().expect("loads");
    let decision = decide(&engine, &input("human", "DELETE", "HIGH", Some("decommission")));
    assert_eq!(decision.outcome, Outcome::RequireApproval);
    assert_eq!(decision.approvals, None, "one approver, and no approvals field");
    assert_eq!(
        engine
            .evaluate(&input("human", "DELETE", "HIGH", None))
            .expect("evaluates"),
        json!({"outcome": "require_approval", "reasons": ["HIGH risk actions need an approval"]})
    );
}

// ---- each shipped template: what it leaves alone, what it stops --------------------------------------------

#[test]
fn no_deletes_in_namespaces() {
    let rendered = render(
        "no-deletes-in-namespaces",
        json!({"namespaces": ["production", "prod-*"]}),
    );
    let engine = engine(&[&rendered]);
    assert_allowed(&engine, &action("DELETE", "staging", json!({})));
    assert_allowed(&engine, &action("SCALE", "production", json!({"replicas": 3})));
    assert_denied(
        &engine,
        &action("DELETE", "production", json!({})),
        "DELETE of a Deployment is not allowed in namespace production",
    );
    assert_denied(&engine, &action("DELETE", "prod-eu", json!({})), "namespace prod-eu");
    // Humans and approvals do not get around a deny.
    let human = with(
        action("DELETE", "production", json!({})),
        "/identity/kind",
        json!("human"),
    );
    assert_eq!(decide(&engine, &human).outcome, Outcome::Deny);

    let pods_only = render(
        "no-deletes-in-namespaces",
        json!({"namespaces": ["production"], "kinds": ["Pod"]}),
    );
    let engine = self::engine(&[&pods_only]);
    assert_allowed(&engine, &action("DELETE", "production", json!({})));
    let pod = with(
        action("DELETE", "production", json!({})),
        "/action/resource_kind",
        json!("Pod"),
    );
    assert_denied(&engine, &pod, "DELETE of a Pod");
}

#[test]
fn change_window() {
    let rendered = render(
        "change-window",
        json!({"weekdays": ["mon", "tue", "wed", "thu", "fri"], "start_hour": 9, "end_hour": 17}),
    );
    let engine = engine(&[&rendered]);
    let at = |time: &str| with(action("SCALE", "staging", json!({"replicas": 3})), "/time", json!(time));
    // 2026-11-27 is a Friday, 2026-11-28 a Saturday.
    assert_allowed(&engine, &at("2026-11-27T09:00:00Z"));
    assert_allowed(&engine, &at("2026-11-27T16:59:59.999999Z"));
    assert_denied(&engine, &at("2026-11-27T17:00:00Z"), "outside the change window");
    assert_denied(&engine, &at("2026-11-27T08:59:59Z"), "outside the change window");
    assert_denied(
        &engine,
        &at("2026-11-28T10:00:00Z"),
        "SCALE is outside the change window (mon tue wed thu fri, 9:00 to 17:00 UTC)",
    );
    // Offsets are converted: 20:00+05:00 is 15:00 UTC.
    assert_allowed(&engine, &at("2026-11-27T20:00:00+05:00"));
    // Reads are never restricted; a missing time is outside every window.
    let read = with(
        input("agent", "GET", "LOW", None),
        "/time",
        json!("2026-11-28T03:00:00Z"),
    );
    assert_allowed(&engine, &read);
    let mut no_time = at("2026-11-27T10:00:00Z");
    no_time.as_object_mut().expect("object").remove("time");
    assert_denied(&engine, &no_time, "outside the change window");

    // Across midnight, asking for an approval instead of denying, in production only.
    let night = render(
        "change-window",
        json!({"weekdays": ["fri", "sat"], "start_hour": 22, "end_hour": 6, "outside": "require_approval",
               "namespaces": ["production"]}),
    );
    let engine = self::engine(&[&night]);
    let prod = |time: &str| with(at(time), "/action/namespace", json!("production"));
    assert_allowed(&engine, &prod("2026-11-27T23:00:00Z"));
    assert_allowed(&engine, &prod("2026-11-28T05:00:00Z"));
    let decision = decide(&engine, &prod("2026-11-27T12:00:00Z"));
    assert_eq!(decision.outcome, Outcome::RequireApproval);
    assert_eq!(decision.approvals, None);
    assert_allowed(&engine, &at("2026-11-27T12:00:00Z"));
}

#[test]
fn max_replicas() {
    let rendered = render(
        "max-replicas",
        json!({"max": 20, "limits": {"staging": 5, "production": 50}}),
    );
    let engine = engine(&[&rendered]);
    assert_allowed(&engine, &action("SCALE", "staging", json!({"replicas": 5})));
    assert_denied(
        &engine,
        &action("SCALE", "staging", json!({"replicas": 6})),
        "6 replicas exceed the limit of 5 in namespace staging",
    );
    assert_allowed(&engine, &action("SCALE", "production", json!({"replicas": 50})));
    assert_allowed(&engine, &action("SCALE", "dev", json!({"replicas": 20})));
    assert_denied(
        &engine,
        &action("SCALE", "dev", json!({"replicas": 21})),
        "limit of 20 in namespace dev",
    );
    let manifest = |replicas: u32| {
        json!({"manifest": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web-api"},
                            "spec": {"replicas": replicas}}})
    };
    assert_allowed(&engine, &action("APPLY", "production", manifest(10)));
    assert_denied(&engine, &action("APPLY", "production", manifest(51)), "51 replicas");
    assert_denied(
        &engine,
        &action("PATCH", "staging", json!({"patch": {"spec": {"replicas": 9}}})),
        "9 replicas",
    );
    assert_allowed(
        &engine,
        &action(
            "PATCH",
            "staging",
            json!({"patch": {"metadata": {"labels": {"a": "b"}}}}),
        ),
    );

    // Limits only: namespaces without one are not limited.
    let limits_only = render("max-replicas", json!({"limits": {"staging": 5}}));
    let engine = self::engine(&[&limits_only]);
    assert_allowed(&engine, &action("SCALE", "dev", json!({"replicas": 1000})));
    assert_eq!(
        decide(&engine, &action("SCALE", "staging", json!({"replicas": 6}))).outcome,
        Outcome::Deny
    );
}

#[test]
fn two_approvals_for_high() {
    let rendered = render("two-approvals-for-high", json!({}));
    assert_eq!(
        rendered.params,
        params(json!({"count": 2, "levels": ["HIGH"], "namespaces": [], "groups": []}))
    );
    let engine = engine(&[&rendered]);
    let decision = decide(&engine, &input("human", "DELETE", "HIGH", Some("decommission")));
    assert_eq!(decision.outcome, Outcome::RequireApproval);
    assert_eq!(decision.approvals, Some(2));
    assert_eq!(
        decision.reasons,
        [
            "HIGH risk actions need 2 approvals",
            "HIGH risk actions need an approval"
        ]
    );
    let medium = decide(&engine, &input("human", "SCALE", "MEDIUM", None));
    assert_eq!((medium.outcome, medium.approvals), (Outcome::Allow, None));
    // A deny still beats it.
    assert_eq!(
        decide(&engine, &input("agent", "DELETE", "HIGH", None)).outcome,
        Outcome::Deny
    );

    // Three approvals for MEDIUM and HIGH in production; elsewhere the default (one approval for HIGH).
    let strict = render_as(
        "two-approvals-for-high",
        json!({"count": 3, "levels": ["MEDIUM", "HIGH"], "namespaces": ["production"]}),
        Some("production_approvals"),
    );
    let engine = self::engine(&[&rendered, &strict]);
    let prod = |risk: &str| {
        with(
            input("human", "SCALE", risk, None),
            "/action/namespace",
            json!("production"),
        )
    };
    let decision = decide(&engine, &prod("MEDIUM"));
    assert_eq!(
        (decision.outcome, decision.approvals),
        (Outcome::RequireApproval, Some(3))
    );
    assert_eq!(decision.reasons, ["MEDIUM risk actions need 3 approvals"]);
    assert_eq!(
        decide(&engine, &prod("HIGH")).approvals,
        Some(3),
        "the largest count wins"
    );
    assert_eq!(decide(&engine, &prod("LOW")).outcome, Outcome::Allow);
    assert_eq!(
        decide(&engine, &input("human", "SCALE", "HIGH", None)).approvals,
        Some(2),
        "staging: only the first instance applies"
    );
    assert!(decision.approval_groups.is_empty(), "no groups named, none required");
}

#[test]
fn two_approvals_for_high_by_group() {
    let by_group = render(
        "two-approvals-for-high",
        json!({"count": 2, "groups": ["sre", "security"], "namespaces": ["production"]}),
    );
    let engine = engine(&[&by_group]);
    let prod = with(
        input("human", "DELETE", "HIGH", Some("decommission")),
        "/action/namespace",
        json!("production"),
    );
    let decision = decide(&engine, &prod);
    assert_eq!(decision.outcome, Outcome::RequireApproval);
    assert_eq!(decision.approvals, Some(2));
    assert_eq!(decision.approval_groups, ["security", "sre"]);
    assert_eq!(
        decision.reasons,
        [
            "HIGH risk actions need 2 approvals, one from each of the groups sre, security",
            "HIGH risk actions need an approval"
        ]
    );
    // Elsewhere the template does not apply: the default single approval, no groups.
    let staging = decide(&engine, &input("human", "DELETE", "HIGH", Some("decommission")));
    assert_eq!((staging.approvals, staging.approval_groups.len()), (None, 0));
    // Three groups with a count of two: one approver per group, so three.
    let three = render_as(
        "two-approvals-for-high",
        json!({"groups": ["sre", "security", "dba"]}),
        Some("three_groups"),
    );
    let decision = decide(&self::engine(&[&three]), &input("human", "DELETE", "HIGH", None));
    assert_eq!(decision.approvals, Some(3));
    assert_eq!(decision.approval_groups, ["dba", "security", "sre"]);
}

#[test]
fn read_only_agents() {
    let rendered = render("read-only-agents", json!({"agents": ["ci-bot"]}));
    let engine = engine(&[&rendered]);
    assert_allowed(&engine, &input("agent", "GET", "LOW", None));
    assert_allowed(&engine, &input("agent", "LIST", "LOW", None));
    assert_denied(
        &engine,
        &input("agent", "SCALE", "LOW", Some("load test")),
        "agent ci-bot is read-only: SCALE is a mutation",
    );
    let other = with(
        input("agent", "SCALE", "LOW", Some("x")),
        "/identity/name",
        json!("deploy-bot"),
    );
    assert_allowed(&engine, &other);
    // Humans with the same name are not agents.
    assert_allowed(&engine, &input("human", "SCALE", "LOW", None));

    let by_id = render("read-only-agents", json!({"agents": ["agt_0001"]}));
    assert_eq!(
        decide(&self::engine(&[&by_id]), &other).outcome,
        Outcome::Deny,
        "agt_0001 is the id of every agent input here"
    );
    let all = render("read-only-agents", json!({"all_agents": true}));
    let engine = self::engine(&[&all]);
    assert_denied(&engine, &other, "agent deploy-bot is read-only");
    assert_allowed(
        &engine,
        &with(input("agent", "GET", "LOW", None), "/identity/name", json!("x")),
    );
}

fn deployment(pod_spec: Value) -> Value {
    json!({"manifest": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web-api"},
                        "spec": {"replicas": 2, "template": {"spec": pod_spec}}}})
}

#[test]
fn no_privileged_pods() {
    let rendered = render("no-privileged-pods", json!({}));
    let engine = engine(&[&rendered]);
    let clean = json!({"containers": [{"name": "app", "image": "ghcr.io/acme/app:1",
                                       "securityContext": {"privileged": false, "allowPrivilegeEscalation": false}}]});
    assert_allowed(&engine, &action("APPLY", "staging", deployment(clean)));
    assert_allowed(&engine, &action("SCALE", "staging", json!({"replicas": 3})));

    let cases = [
        (
            json!({"containers": [{"name": "app", "image": "x", "securityContext": {"privileged": true}}]}),
            "container app is privileged",
        ),
        (
            json!({"containers": [{"name": "app", "image": "x"}],
                   "initContainers": [{"name": "init", "image": "x", "securityContext": {"allowPrivilegeEscalation": true}}]}),
            "container init allows privilege escalation",
        ),
        (
            json!({"containers": [{"name": "app", "image": "x",
                                   "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "CAP_SYS_ADMIN"]}}}]}),
            "container app adds the capability CAP_SYS_ADMIN",
        ),
        (json!({"hostNetwork": true, "containers": []}), "hostNetwork is true"),
        (json!({"hostPID": true}), "hostPID is true"),
        (json!({"hostIPC": true}), "hostIPC is true"),
        (
            json!({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
            "volume root mounts a host path",
        ),
    ];
    for (pod_spec, reason) in cases {
        assert_denied(&engine, &action("APPLY", "staging", deployment(pod_spec)), reason);
    }
    // A Pod, a CronJob's job template and a PATCH merge patch are pod specs too.
    let pod = json!({"manifest": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                  "spec": {"containers": [{"name": "p", "image": "x", "securityContext": {"privileged": true}}]}}});
    assert_denied(&engine, &action("APPLY", "staging", pod), "container p is privileged");
    let cron = json!({"manifest": {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
                                   "spec": {"jobTemplate": {"spec": {"template": {"spec": {"hostPID": true}}}}}}});
    assert_denied(&engine, &action("APPLY", "staging", cron), "hostPID is true");
    let patch = json!({"patch": {"spec": {"template": {"spec": {"hostNetwork": true}}}}});
    assert_denied(&engine, &action("PATCH", "staging", patch), "hostNetwork is true");

    let host_path = deployment(json!({"volumes": [{"name": "logs", "hostPath": {"path": "/var/log"}}]}));
    let relaxed = render(
        "no-privileged-pods",
        json!({"allow_host_path": true, "namespaces": ["logging"]}),
    );
    let engine = self::engine(&[&relaxed]);
    assert_allowed(&engine, &action("APPLY", "logging", host_path));
    let privileged =
        deployment(json!({"containers": [{"name": "a", "image": "x", "securityContext": {"privileged": true}}]}));
    assert_denied(&engine, &action("APPLY", "logging", privileged.clone()), "privileged");
    assert_allowed(&engine, &action("APPLY", "staging", privileged));
}

#[test]
fn image_registry_allowlist() {
    let rendered = render(
        "image-registry-allowlist",
        json!({"registries": ["ghcr.io/acme", "registry.example.com:5000", "docker.io/library/nginx"]}),
    );
    let engine = engine(&[&rendered]);
    let set_image = |image: &str| action("SET_IMAGE", "staging", json!({"container": "app", "image": image}));
    for allowed in [
        "ghcr.io/acme/app:1.2",
        "GHCR.io/acme/app",
        "ghcr.io/acme/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "registry.example.com:5000/app:1",
        "nginx:1.27",
        "nginx",
        "docker.io/library/nginx:1.27",
    ] {
        assert_allowed(&engine, &set_image(allowed));
    }
    for denied in [
        "ghcr.io/acme-evil/app:1",
        "ghcr.io/other/app",
        "registry.example.com/app:1",
        "registry.example.com:5000.evil.io/app",
        "redis:7",
        "acme/app",
        "nginx-evil:1",
        "localhost:5000/app",
    ] {
        assert_denied(
            &engine,
            &set_image(denied),
            &format!("image {denied} is not from an allowed registry"),
        );
    }
    let manifest = deployment(json!({
        "containers": [{"name": "app", "image": "ghcr.io/acme/app:1"}],
        "initContainers": [{"name": "init", "image": "busybox:1.36"}],
    }));
    assert_denied(&engine, &action("APPLY", "staging", manifest), "image busybox:1.36");
    let fine = deployment(json!({"containers": [{"name": "app", "image": "ghcr.io/acme/app:1"}]}));
    assert_allowed(&engine, &action("APPLY", "staging", fine));
    let patch =
        json!({"patch": {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "evil.io/x"}]}}}}});
    assert_denied(&engine, &action("PATCH", "staging", patch), "image evil.io/x");
    // Actions that name no image are unaffected.
    assert_allowed(&engine, &action("SCALE", "staging", json!({"replicas": 3})));

    let hub_user = render(
        "image-registry-allowlist",
        json!({"registries": ["docker.io/acme"], "namespaces": ["prod-*"]}),
    );
    let engine = self::engine(&[&hub_user]);
    let in_prod = |image: &str| with(set_image(image), "/action/namespace", json!("prod-eu"));
    assert_allowed(&engine, &in_prod("acme/app:1"));
    assert_denied(&engine, &in_prod("nginx"), "image nginx");
    // Outside prod-*, any image.
    assert_allowed(&engine, &set_image("nginx"));
}

// ---- several templates and instances together -------------------------------------------------------------

#[test]
fn several_templates_and_instances_load_together() {
    let prod = render_as(
        "no-deletes-in-namespaces",
        json!({"namespaces": ["production"]}),
        Some("prod_deletes"),
    );
    let payments = render_as(
        "no-deletes-in-namespaces",
        json!({"namespaces": ["payments"], "kinds": ["Service"]}),
        Some("payments_deletes"),
    );
    let replicas = render("max-replicas", json!({"max": 10}));
    let approvals = render("two-approvals-for-high", json!({}));
    let engine = engine(&[&prod, &payments, &replicas, &approvals]);

    assert_denied(
        &engine,
        &action("DELETE", "production", json!({})),
        "namespace production",
    );
    assert_allowed(&engine, &action("DELETE", "payments", json!({})));
    let service = with(
        action("DELETE", "payments", json!({})),
        "/action/resource_kind",
        json!("Service"),
    );
    assert_denied(&engine, &service, "DELETE of a Service");
    // Reasons of all templates are gathered, sorted.
    let both = with(
        action("SCALE", "production", json!({"replicas": 11})),
        "/risk/level",
        json!("HIGH"),
    );
    let decision = decide(&engine, &both);
    assert_eq!(decision.outcome, Outcome::Deny);
    assert_eq!(
        decision.reasons,
        ["11 replicas exceed the limit of 10 in namespace production"]
    );
    let high = with(
        action("SCALE", "production", json!({"replicas": 3})),
        "/risk/level",
        json!("HIGH"),
    );
    assert_eq!(decide(&engine, &high).approvals, Some(2));
    assert_allowed(&engine, &action("SCALE", "production", json!({"replicas": 3})));
}

#[test]
fn rendered_files_load_as_serve_loads_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rendered = render("no-deletes-in-namespaces", json!({"namespaces": ["production"]}));
    let template_file = dir.path().join("no-deletes.rego");
    std::fs::write(&template_file, &rendered.text).expect("write");
    let default_file = dir.path().join("default.rego");
    std::fs::write(&default_file, policy::DEFAULT_POLICY).expect("write");

    // `serve --policy default.rego --policy no-deletes.rego`, and the default extended by the file: one policy.
    let replaced = EmbeddedEngine::from_files(&[default_file, template_file.clone()]).expect("loads");
    let extended = EmbeddedEngine::default_policy_and_files(&[template_file]).expect("loads");
    assert_eq!(replaced.revision(), extended.revision());
    assert_ne!(
        extended.revision(),
        EmbeddedEngine::default_policy().expect("loads").revision()
    );
    for engine in [&replaced, &extended] {
        assert_denied(
            engine,
            &action("DELETE", "production", json!({})),
            "namespace production",
        );
        assert_allowed(engine, &action("DELETE", "staging", json!({})));
    }
}

#[test]
fn the_same_instance_twice_is_refused_at_load() {
    let a = render("no-deletes-in-namespaces", json!({"namespaces": ["a"]}));
    let b = render("no-deletes-in-namespaces", json!({"namespaces": ["b"]}));
    let error = EmbeddedEngine::from_sources(vec![
        ("default.rego".into(), policy::DEFAULT_POLICY.into()),
        ("a.rego".into(), a.text),
        ("b.rego".into(), b.text),
    ])
    .expect_err("refused");
    assert!(
        matches!(&error, PolicyError::Load(text) if text.contains("a.rego and b.rego")
            && text.contains("docketops.templates.no_deletes_in_namespaces") && text.contains("--instance")),
        "{error}"
    );
}

// ---- parameters: schema errors and hostile values ------------------------------------------------------

fn render_error(name: &str, given: Value, instance: Option<&str>) -> TemplateError {
    library()
        .find(name)
        .expect("shipped")
        .render(&params(given), instance)
        .expect_err("refused")
}

#[test]
fn parameters_are_checked_against_the_schema() {
    let error = render_error("no-deletes-in-namespaces", json!({"namespace": ["x"]}), None);
    assert!(
        matches!(&error, TemplateError::UnknownParameter { parameter, known, .. }
            if parameter == "namespace" && known == "namespaces, kinds"),
        "{error}"
    );
    let error = render_error("no-deletes-in-namespaces", json!({}), None);
    assert!(
        matches!(&error, TemplateError::MissingParameter { parameter, .. } if parameter == "namespaces"),
        "{error}"
    );
    assert!(error.to_string().contains("a list of strings, at least 1"), "{error}");
    for (name, given, message) in [
        (
            "no-deletes-in-namespaces",
            json!({"namespaces": "production"}),
            "expected a list of strings",
        ),
        ("no-deletes-in-namespaces", json!({"namespaces": []}), "at least 1 item"),
        (
            "no-deletes-in-namespaces",
            json!({"namespaces": ["a", 1]}),
            "namespaces[1]: expected a string",
        ),
        (
            "two-approvals-for-high",
            json!({"count": 11}),
            "more than the maximum 10",
        ),
        (
            "two-approvals-for-high",
            json!({"count": 2.5}),
            "expected a whole number",
        ),
        (
            "two-approvals-for-high",
            json!({"count": "2"}),
            "expected a whole number",
        ),
        (
            "two-approvals-for-high",
            json!({"levels": ["SEVERE"]}),
            "\"SEVERE\" is not one of LOW, MEDIUM, HIGH",
        ),
        ("change-window", json!({"start_hour": -1}), "less than the minimum 0"),
        (
            "change-window",
            json!({"outside": "warn"}),
            "not one of deny, require_approval",
        ),
        (
            "read-only-agents",
            json!({"all_agents": "yes"}),
            "expected true or false",
        ),
        (
            "max-replicas",
            json!({"limits": {"staging": "five"}}),
            "limits[\"staging\"]: expected a whole number",
        ),
        (
            "max-replicas",
            json!({"limits": ["staging"]}),
            "expected an object of whole numbers",
        ),
    ] {
        let error = render_error(name, given.clone(), None);
        assert!(
            matches!(&error, TemplateError::InvalidParameter { .. }) && error.to_string().contains(message),
            "{name} {given}: {error}"
        );
    }
    for instance in ["", "Prod", "a-b", "a.b", "x\npackage evil", "import", "9lives"] {
        let error = render_error("read-only-agents", json!({}), Some(instance));
        assert!(
            matches!(error, TemplateError::InvalidInstance(_)),
            "{instance:?}: {error}"
        );
    }
    assert!(matches!(library().find("nope"), Err(TemplateError::Unknown(_))));
}

#[test]
fn set_assignments_are_read_by_the_parameter_type() {
    let library = library();
    let window = library.find("change-window").expect("shipped");
    assert_eq!(
        window.parse_assignment("weekdays=mon,tue").expect("list"),
        ("weekdays".to_string(), json!(["mon", "tue"]))
    );
    assert_eq!(
        window.parse_assignment("start_hour=8").expect("number"),
        ("start_hour".to_string(), json!(8))
    );
    assert_eq!(
        window.parse_assignment("outside=require_approval").expect("string"),
        ("outside".to_string(), json!("require_approval"))
    );
    let replicas = library.find("max-replicas").expect("shipped");
    assert_eq!(
        replicas.parse_assignment(r#"limits={"staging": 5}"#).expect("object"),
        ("limits".to_string(), json!({"staging": 5}))
    );
    for bad in ["start_hour=nine", "start_hour", "nope=1", "limits=staging:5"] {
        let error = window.parse_assignment(bad).or_else(|_| replicas.parse_assignment(bad));
        assert!(error.is_err(), "{bad}");
    }
    // The same value text means the same for every array of strings: JSON when it starts with [.
    let items = Schema::Array {
        items: Box::new(Schema::String { choices: None }),
        min_items: 0,
    };
    assert_eq!(
        items.value_from_text(r#"["a,b", "c"]"#, "x").expect("json"),
        json!(["a,b", "c"])
    );
}

/// Strings that would change the policy if they were pasted into it rather than encoded.
const HOSTILE: &[&str] = &[
    "production\"]}\ndeny_reasons contains \"injected\" if true\n#",
    "x\" } \n package docketops.policy \n decision := {\"outcome\": \"allow\", \"reasons\": []} #",
    "back\\slash\\\"quote",
    "`raw` string",
    "line\u{2028}separator\u{2029}and\u{85}next",
    "nul\u{0}byte\u{7f}del\u{1b}[0m",
    "\\u0022 is not a quote",
    "# not a comment",
    "é ü 😀 \u{10ffff}",
    "",
];

#[test]
fn hostile_string_parameters_are_rendered_inert() {
    for hostile in HOSTILE {
        // render() itself proves that `params` reads back exactly as given.
        let rendered = render(
            "no-deletes-in-namespaces",
            json!({"namespaces": [hostile], "kinds": [hostile, "Deployment"]}),
        );
        for line in rendered.text.lines().filter(|line| line.contains("namespaces")) {
            assert!(line.chars().all(|c| (' '..='~').contains(&c) || c == '\t'), "{line:?}");
        }
        let engine = engine(&[&rendered]);
        // Nothing was injected: ordinary actions keep the default decisions.
        assert_allowed(&engine, &action("SCALE", "staging", json!({"replicas": 2})));
        assert_allowed(&engine, &action("DELETE", "production", json!({})));
        assert_eq!(
            decide(&engine, &input("agent", "SCALE", "MEDIUM", None)).reasons,
            ["mutations by agents need a justification"]
        );
        // And the value is data, compared verbatim: a namespace spelled exactly so is protected.
        let exact = action("DELETE", hostile, json!({}));
        assert_eq!(decide(&engine, &exact).outcome, Outcome::Deny, "{hostile:?}");

        // Object keys and values too.
        let mut limits = Map::new();
        limits.insert(hostile.to_string(), json!(1));
        let replicas = render("max-replicas", json!({"limits": limits}));
        let engine = self::engine(&[&replicas]);
        assert_allowed(&engine, &action("SCALE", "staging", json!({"replicas": 200})));
        assert_eq!(
            decide(&engine, &action("SCALE", hostile, json!({"replicas": 2}))).outcome,
            Outcome::Deny
        );
    }
}

// ---- custom templates ---------------------------------------------------------------------------------

const CUSTOM: &str = r#"# METADATA
# {
#   "title": "No latest tag",
#   "description": "SET_IMAGE must name a tag other than latest, or a digest.",
#   "custom": {
#     "parameters": {
#       "properties": {
#         "tags": {"type": "array", "items": {"type": "string"}, "default": ["latest"], "description": "Refused tags."}
#       }
#     },
#     "example": {"tags": ["latest", "dev"]}
#   }
# }
package docketops.templates.no_latest_tag

import rego.v1

deny_reasons contains sprintf("image %s uses the tag %s", [image, tag]) if {
	input.action.action_type == "SET_IMAGE"
	image := input.action.parameters.image
	some tag in params.tags
	endswith(image, concat(":", ["", tag]))
}
"#;

#[test]
fn a_custom_template_is_a_rego_file_with_the_same_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("no-latest-tag.rego"), CUSTOM).expect("write");
    std::fs::write(dir.path().join("README.md"), "not a template").expect("write");
    let mut library = library();
    library.add_dir(dir.path()).expect("loads");
    let template = library.find("no-latest-tag").expect("found");
    assert!(template.origin.ends_with("no-latest-tag.rego"), "{}", template.origin);
    let rendered = template.render(&Map::new(), Some("tags")).expect("renders");
    let engine = engine(&[&rendered]);
    let image = |image: &str| action("SET_IMAGE", "staging", json!({"container": "app", "image": image}));
    assert_denied(&engine, &image("ghcr.io/acme/app:latest"), "uses the tag latest");
    assert_allowed(&engine, &image("ghcr.io/acme/app:1.0"));

    // A name given twice is refused.
    let error = library.add_dir(dir.path()).expect_err("twice");
    assert!(matches!(error, TemplateError::Duplicate(_)), "{error}");
}

#[test]
fn broken_templates_are_refused_with_the_reason() {
    let parse = |source: &str| policy::Template::parse("custom", source, "test").expect_err("refused");
    let cases = [
        (CUSTOM.replace("# METADATA\n", ""), "METADATA"),
        (
            CUSTOM.replace("# {\n#   \"title\": \"No latest tag\",", "# title: No latest tag\n# {"),
            "JSON object",
        ),
        (
            CUSTOM.replace("package docketops.templates.no_latest_tag", "package docketops.policy"),
            "package must be",
        ),
        (
            CUSTOM.replace("import rego.v1", "import rego.v1\n\nparams := {}"),
            "must not define `params`",
        ),
        (
            CUSTOM.replace(
                "\"default\": [\"latest\"]",
                "\"default\": [\"latest\"], \"pattern\": \"^a\"",
            ),
            "pattern",
        ),
        (
            CUSTOM.replace("\"type\": \"array\"", "\"type\": \"list\""),
            "unsupported type",
        ),
        (
            CUSTOM.replace("\"description\": \"Refused tags.\"", "\"x\": 1"),
            "unknown field",
        ),
        (
            CUSTOM.replace("\"default\": [\"latest\"]", "\"default\": \"latest\""),
            "default",
        ),
        (CUSTOM.replace("\"dev\"", "7"), "custom.example"),
        (
            CUSTOM.replace("\"default\": [\"latest\"],", "\"minimum\": 1,"),
            "does not go with type",
        ),
    ];
    for (source, message) in cases {
        let error = parse(&source);
        assert!(
            matches!(&error, TemplateError::Invalid { .. }) && error.to_string().contains(message),
            "{message}: {error}"
        );
    }
    // A template that does not compile is refused when rendered, before anything loads it.
    let broken = CUSTOM.replace("some tag in params.tags", "some tag in params.tags\n\tundefined_thing");
    let template = policy::Template::parse("custom", &broken, "test").expect("parses");
    let error = template.render(&Map::new(), None).expect_err("refused");
    assert!(matches!(error, TemplateError::Render(_)), "{error}");
}

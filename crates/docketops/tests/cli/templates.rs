//! `docketops policy templates list|show|render` and `docketops policy default`: a template rendered by the
//! binary, loaded next to the printed default policy by `policy test`, decides as documented. No database and
//! no Kubernetes.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use super::BIN;

fn docketops(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8")
}

fn input(action_type: &str, namespace: &str) -> Value {
    json!({
        "identity": {"id": "agt_1", "name": "ci-bot", "kind": "agent", "roles": ["operator"], "scopes": [], "trust_score": 0},
        "action": {"action_type": action_type, "namespace": namespace, "resource_kind": "Deployment",
                   "resource_name": "web-api", "parameters": {}, "justification": "ticket 42"},
        "risk": {"level": "HIGH", "rules": ["baseline"]},
        "preview": {"diff": []},
        "time": "2026-11-27T10:00:00Z",
    })
}

#[test]
fn templates_list_show_and_render_into_a_policy_that_decides() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    let list = stdout(&docketops(dir, &["policy", "templates", "list"]));
    for name in [
        "change-window",
        "image-registry-allowlist",
        "max-replicas",
        "no-deletes-in-namespaces",
        "no-privileged-pods",
        "read-only-agents",
        "two-approvals-for-high",
    ] {
        assert!(list.contains(name), "{name} in {list}");
    }
    let show = stdout(&docketops(
        dir,
        &["policy", "templates", "show", "no-deletes-in-namespaces"],
    ));
    assert!(
        show.contains("namespaces: a list of strings, at least 1; required") && show.contains("Example:"),
        "{show}"
    );
    let source = stdout(&docketops(
        dir,
        &["policy", "templates", "show", "no-deletes-in-namespaces", "--rego"],
    ));
    assert!(source.starts_with("# METADATA"), "{source}");

    // Render two templates into files, print the default policy, and decide with all three.
    std::fs::write(dir.join("approvals.json"), r#"{"count": 3}"#).unwrap();
    for args in [
        &[
            "policy",
            "templates",
            "render",
            "no-deletes-in-namespaces",
            "--set",
            "namespaces=production,prod-*",
            "--instance",
            "prod_deletes",
            "--out",
            "no-deletes.rego",
        ][..],
        &[
            "policy",
            "templates",
            "render",
            "two-approvals-for-high",
            "--params-file",
            "approvals.json",
            "--out",
            "approvals.rego",
        ][..],
    ] {
        let out = docketops(dir, args);
        stdout(&out);
        assert!(String::from_utf8_lossy(&out.stderr).contains("--policy default.rego"));
    }
    std::fs::write(
        dir.join("default.rego"),
        stdout(&docketops(dir, &["policy", "default"])),
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("default.rego")).unwrap(),
        policy::DEFAULT_POLICY
    );
    let decide = |document: Value| -> Value {
        std::fs::write(dir.join("input.json"), document.to_string()).unwrap();
        let out = docketops(
            dir,
            &[
                "policy",
                "test",
                "--input",
                "input.json",
                "--policy",
                "default.rego",
                "--policy",
                "no-deletes.rego",
                "--policy",
                "approvals.rego",
            ],
        );
        serde_json::from_str(&stdout(&out)).expect("a decision")
    };
    let deleted = decide(input("DELETE", "prod-eu"));
    assert_eq!(deleted["outcome"], "deny");
    assert_eq!(
        deleted["reasons"],
        json!(["DELETE of a Deployment is not allowed in namespace prod-eu"])
    );
    let scaled = decide(input("SCALE", "prod-eu"));
    assert_eq!(scaled["outcome"], "require_approval");
    assert_eq!(scaled["approvals"], 3);
}

#[test]
fn render_errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let fails = |args: &[&str], message: &str| {
        let out = docketops(dir.path(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "nothing rendered");
    };
    let render = ["policy", "templates", "render"];
    fails(&[&render[..], &["no-such-template"]].concat(), "unknown template");
    fails(
        &[&render[..], &["no-deletes-in-namespaces"]].concat(),
        "needs the parameter \"namespaces\"",
    );
    fails(
        &[&render[..], &["max-replicas", "--set", "max=many"]].concat(),
        "expected a whole number",
    );
    fails(
        &[&render[..], &["max-replicas", "--set", "maximum=3"]].concat(),
        "has no parameter \"maximum\"",
    );
    fails(
        &[&render[..], &["max-replicas", "--set", "max=3", "--set", "max=4"]].concat(),
        "given twice",
    );
    fails(
        &[&render[..], &["max-replicas", "--instance", "Max-Replicas"]].concat(),
        "invalid instance name",
    );
}

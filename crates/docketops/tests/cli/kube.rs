//! `docketops kube rbac` and `kube check` against the real API server, and the example manifests.

use std::path::Path;
use std::process::Command;

use super::{BIN, KubeWorld, stdout};

/// `kube rbac` prints manifests the real API server accepts, and `kube check` proves with the gateway's own
/// token that they give it the executor accounts of the governed namespace and nothing elsewhere.
#[tokio::test]
async fn kube_rbac_manifests_apply_and_kube_check_proves_them() {
    let world = KubeWorld::new().await;
    let check = |namespace: &str| {
        Command::new(BIN)
            .args(["kube", "check", "--kubeconfig"])
            .arg(&world.kubeconfig)
            .args([
                "-n",
                namespace,
                "--release",
                &world.release,
                "--gateway-namespace",
                &world.gateway_ns,
                "--kube-timeout",
                "20",
            ])
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    };
    let (app_ns, release, gateway_ns) = (&world.app_ns, &world.release, &world.gateway_ns);
    let governed = check(app_ns);
    let text = stdout(&governed);
    assert_eq!(
        governed.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&governed.stderr)
    );
    assert!(
        text.contains(&format!(
            "ok      {app_ns}: LIST ConfigMap as system:serviceaccount:{app_ns}:{release}-reader"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "ok      cluster: LIST Namespace as system:serviceaccount:{gateway_ns}:{release}-cluster-reader"
        )),
        "{text}"
    );

    let ungoverned = check(&world.other_ns);
    let text = stdout(&ungoverned);
    assert_eq!(ungoverned.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("failed  {}", world.other_ns)) && text.contains("403") && text.contains("impersonate"),
        "{text}"
    );
}

/// `kube rbac` refuses namespaces the gateway must never govern, and names that are not namespaces.
#[test]
fn kube_rbac_refuses_system_gateway_and_invalid_namespaces() {
    for (namespace, expected) in [
        ("kube-system", "blocked namespace"),
        ("docketops", "gateway's own namespace"),
        ("Not_A_Namespace", "not a valid name"),
    ] {
        let out = Command::new(BIN)
            .args(["kube", "rbac", "-n", "staging", "-n", namespace])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{namespace}: {stderr}");
        assert!(stderr.contains(expected), "{namespace}: {stderr}");
        assert!(out.stdout.is_empty(), "no manifests are printed");
    }
}

/// The example manifests in the repository are what `docketops kube rbac` prints today.
#[test]
fn the_example_rbac_manifests_are_current() {
    let out = Command::new(BIN)
        .args(["kube", "rbac", "-n", "staging", "-n", "production"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/rbac.example.json");
    let committed = std::fs::read_to_string(&example).unwrap_or_default();
    assert_eq!(
        committed,
        stdout(&out),
        "{} is stale: regenerate it with `docketops kube rbac -n staging -n production > deploy/kubernetes/rbac.example.json`",
        example.display()
    );
}

//! ARCHITECTURE.md's dependency rules, checked over `cargo metadata`: each of the crates that reach the
//! outside world is used by the one crate whose job that is (SQL in storage, Kubernetes in the executor,
//! HTTP serving in the server, outbound HTTP only where an allow list says why), the ledger core stays free
//! of I/O, and every declared dependency is used.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Where a dependency may appear as a normal (non-dev) dependency, and why.
const PLACES: &[(&str, &[&str], &str)] = &[
    ("sqlx", &["docketops-storage"], "all SQL lives in the storage crate"),
    (
        "kube",
        &["docketops-executor"],
        "all Kubernetes calls are in the executor",
    ),
    (
        "k8s-openapi",
        &["docketops-executor", "docketops"],
        "Kubernetes types belong to the executor; the binary only picks the API version (a feature)",
    ),
    ("axum", &["docketops-server"], "HTTP serving is only in the server"),
    (
        "tower-http",
        &["docketops-server"],
        "HTTP serving is only in the server",
    ),
    (
        "reqwest",
        &[
            "docketops-auth",    // OpenID Connect discovery and keys
            "docketops-gateway", // notifications, witnesses
            "docketops-policy",  // the OPA client
            "docketops-mcp",     // the remote gateway backend
            "docketops-siem",    // Splunk HEC
            "docketops",         // the command line's clients and benchmarks
        ],
        "outbound HTTP only where the allow list names its purpose",
    ),
    (
        "opentelemetry-otlp",
        &["docketops"],
        "traces are exported by the binary alone; the libraries only make spans",
    ),
];

/// The ledger core has no I/O, no async, no database and no Kubernetes: none of these, not even for tests.
const NOT_IN_CORE: &[&str] = &["tokio", "sqlx", "kube", "k8s-openapi", "reqwest", "axum", "hyper"];

/// Dependencies declared for what they switch on rather than for their names in code: k8s-openapi's
/// feature picks the Kubernetes API version for `kube` (the binary, and each crate's tests).
const USED_WITHOUT_NAME: &[&str] = &["k8s-openapi"];

struct Package {
    name: String,
    dir: PathBuf,
    /// (dependency, its name in code, normal or dev)
    dependencies: Vec<(String, String, bool)>,
}

fn workspace() -> Vec<Package> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    // Workspace crates are used under their library's name (docketops-ledger-core as ledger_core).
    let lib_names: BTreeMap<&str, String> = packages
        .iter()
        .filter_map(|p| {
            let lib = p["targets"].as_array()?.iter().find(|t| t["kind"][0] == "lib")?;
            Some((p["name"].as_str()?, lib["name"].as_str()?.replace('-', "_")))
        })
        .collect();
    packages
        .iter()
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap());
            let dependencies = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    let name = d["name"].as_str().unwrap().to_string();
                    let in_code = match (d["rename"].as_str(), lib_names.get(name.as_str())) {
                        (Some(rename), _) => rename.replace('-', "_"),
                        (None, Some(lib)) => lib.clone(),
                        (None, None) => name.replace('-', "_"),
                    };
                    let normal = !matches!(d["kind"].as_str(), Some("dev" | "build"));
                    (name, in_code, normal)
                })
                .collect();
            Package {
                name: p["name"].as_str().unwrap().to_string(),
                dir: manifest.parent().unwrap().to_path_buf(),
                dependencies,
            }
        })
        .collect()
}

/// The dependency rules `packages` break, one line each.
fn broken_rules(packages: &[Package]) -> Vec<String> {
    let mut broken = Vec::new();
    for package in packages {
        for (dependency, _, normal) in &package.dependencies {
            let rule = PLACES.iter().find(|(name, _, _)| name == dependency);
            if let Some((_, allowed, why)) = rule
                && *normal
                && !allowed.contains(&package.name.as_str())
            {
                broken.push(format!(
                    "{} depends on {dependency}: {why} (allowed in: {})",
                    package.name,
                    allowed.join(", ")
                ));
            }
            let pure = ["docketops-ledger-core", "docketops-domain"];
            if pure.contains(&package.name.as_str()) && NOT_IN_CORE.contains(&dependency.as_str()) {
                broken.push(format!(
                    "{} depends on {dependency}: the ledger core and the domain have no I/O, async, database or \
                     Kubernetes (the offline verifier depends on them alone)",
                    package.name
                ));
            }
        }
    }
    broken
}

#[test]
fn outside_world_crates_are_used_only_where_the_architecture_says() {
    let packages = workspace();
    assert!(packages.len() >= 10, "the workspace's crates: {}", packages.len());
    let broken = broken_rules(&packages);
    assert!(
        broken.is_empty(),
        "ARCHITECTURE.md's rules broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn a_forbidden_dependency_is_named_with_its_rule() {
    let package = |name: &str, dependency: &str, normal| Package {
        name: name.into(),
        dir: PathBuf::new(),
        dependencies: vec![(dependency.into(), dependency.replace('-', "_"), normal)],
    };
    let broken = broken_rules(&[
        package("docketops-gateway", "sqlx", true),
        package("docketops-ledger-core", "tokio", false),
        package("docketops-storage", "sqlx", true),
        package("docketops-policy", "axum", false),
    ]);
    assert_eq!(
        broken,
        [
            "docketops-gateway depends on sqlx: all SQL lives in the storage crate (allowed in: docketops-storage)",
            "docketops-ledger-core depends on tokio: the ledger core and the domain have no I/O, async, database or \
             Kubernetes (the offline verifier depends on them alone)",
        ]
    );
}

/// Every `.rs` file below `dir` (not `target`).
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() && path.file_name().is_some_and(|n| n != "target") {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `code` names `ident` as a path's first segment or a macro (`ident::`, `ident!`, `use ident`,
/// `extern crate ident`), not only as part of a longer word.
fn names(code: &str, ident: &str) -> bool {
    code.match_indices(ident).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = &code[at + ident.len()..];
        let starts_word = !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let used =
            after.starts_with("::") || after.starts_with('!') || after.starts_with(';') || after.starts_with(" as ");
        starts_word && (used || code[..at].ends_with("use ") || code[..at].ends_with("extern crate "))
    })
}

#[test]
fn every_declared_dependency_is_used() {
    let mut unused = Vec::new();
    for package in workspace() {
        let mut files = Vec::new();
        sources(&package.dir, &mut files);
        let code: String = files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        let declared: BTreeSet<_> = package.dependencies.iter().collect();
        for (dependency, in_code, _) in declared {
            let exempt = USED_WITHOUT_NAME.contains(&dependency.as_str());
            // A crate's dev-dependency on itself turns on a feature for its tests.
            let itself = *dependency == package.name;
            if !exempt && !itself && !names(&code, in_code) {
                unused.push(format!("{}: {dependency} (as `{in_code}`)", package.name));
            }
        }
    }
    assert!(
        unused.is_empty(),
        "dependencies declared but never named in the crate's code (remove them, or list them in \
         USED_WITHOUT_NAME with the reason):\n{}",
        unused.join("\n")
    );
}

#[test]
fn the_usage_check_tells_a_use_from_a_longer_word() {
    assert!(names("use sqlx::Row;", "sqlx"));
    assert!(names("let x = serde_json::json!({});", "serde_json"));
    assert!(names("tracing::info!(\"x\")", "tracing"));
    assert!(!names("let my_sqlx = 1; // sqlx", "sqlx"));
    assert!(!names("fn tokio_like() {}", "tokio"));
}

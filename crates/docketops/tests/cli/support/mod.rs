//! The harness of the `docketops` binary's end-to-end tests: a data directory and database per test
//! (SQLite, or a PostgreSQL database of its own), the binary run against them, a running gateway, and
//! helpers for its API's answers. `kube` holds the real API server's side.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use storage::Store;

pub(crate) mod browser;
pub(crate) mod kube;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_docketops");

fn admin_url() -> String {
    std::env::var("DOCKETOPS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A data directory and database for one test, and helpers to run the binary against them.
pub(crate) struct TestApp {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) database_url: String,
    pg_name: Option<String>,
}

impl TestApp {
    pub(crate) async fn new(backend: &str, test: &str) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let (database_url, pg_name) = match backend {
            "sqlite" => (
                format!("sqlite://{}", dir.path().join("data/ledger.db").display()),
                None,
            ),
            _ => {
                let name = format!("dkt_cli_{}_{}", &test[..test.len().min(36)], std::process::id());
                let url = storage::create_postgres_database(&admin_url(), &name)
                    .await
                    .expect("PostgreSQL must be running for these tests (see README)");
                (url, Some(name))
            }
        };
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        TestApp {
            dir,
            database_url,
            pg_name,
        }
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DOCKETOPS_DATA_DIR", self.data_dir())
            .env("DOCKETOPS_DATABASE_URL", &self.database_url)
            .env("RUST_LOG", "warn")
            .current_dir(self.dir.path());
        command
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Appends `count` notes through the CLI.
    pub(crate) fn append(&self, count: u64) {
        let out = self.run(&[
            "ledger",
            "append",
            "-m",
            "note",
            "--payload",
            r#"{"replicas":3}"#,
            "--repeat",
            &count.to_string(),
            "--concurrency",
            "8",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    pub(crate) async fn store(&self) -> Store {
        Store::connect(&self.database_url).await.unwrap()
    }

    pub(crate) async fn finish(self) {
        if let Some(name) = &self.pg_name {
            storage::drop_postgres_database(&admin_url(), name).await.unwrap();
        }
    }
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn verify_json(app: &TestApp, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["verify", "--json"];
    args.extend_from_slice(extra);
    let out = app.run(&args);
    let report = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&out), String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

/// A running `docketops serve` on a free port.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) admin_key: String,
}

impl Server {
    pub(crate) fn start(app: &TestApp) -> Server {
        Self::start_with(app, &[])
    }

    pub(crate) fn start_with(app: &TestApp, extra: &[&str]) -> Server {
        Self::start_on(app, "127.0.0.1:0", extra)
    }

    /// A gateway listening on `listen` (a fixed port some other process is configured to call).
    pub(crate) fn start_on(app: &TestApp, listen: &str, extra: &[&str]) -> Server {
        Self::start_with_env(app, listen, extra, &[])
    }

    /// A gateway with environment variables besides the test's own (the command's environment is cleared).
    pub(crate) fn start_with_env(app: &TestApp, listen: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let admin_key = stdout(&app.run(&["api-key", "generate", "--kind", "human"]))
            .trim()
            .to_string();
        let mut child = app
            .command()
            .args(["serve", "--listen", listen])
            .args(extra)
            .env("DOCKETOPS_BOOTSTRAP_ADMIN_KEY", &admin_key)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let base = loop {
            assert!(Instant::now() < deadline, "server did not start");
            let line = lines.next().expect("server exited").unwrap();
            if let Some(i) = line.find("listening on http") {
                let address = line[i + "listening on ".len()..].split_whitespace().next().unwrap();
                break address.to_string();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base, admin_key }
    }

    /// The newest ledger entry of the action `action_id`, read with `key`.
    pub(crate) async fn last_entry(&self, action_id: &str, key: &str) -> Value {
        let (_, action) = self.get(&format!("/api/v1/actions/{action_id}"), Some(key)).await;
        action["entries"]
            .as_array()
            .and_then(|e| e.last())
            .cloned()
            .unwrap_or_else(|| panic!("no entries: {action}"))
    }

    pub(crate) async fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut request = reqwest::Client::new().get(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn admin_get(&self, path: &str) -> (u16, Value) {
        self.get(path, Some(&self.admin_key.clone())).await
    }

    pub(crate) async fn post(&self, path: &str, key: &str, body: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kinds of the `entries` of an API answer (an action, a page of the ledger), in order.
pub(crate) fn entry_kinds(answer: &Value) -> Vec<&str> {
    answer["entries"]
        .as_array()
        .expect("an answer with entries")
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

/// Identities with a mutate scope on every kind of `namespace`, made by the admin: name → (API key, id).
pub(crate) async fn create_identities(
    server: &Server,
    namespace: &str,
    specs: &[(&str, &str, &[&str])],
) -> std::collections::HashMap<String, (String, String)> {
    let mut made = std::collections::HashMap::new();
    for (name, kind, roles) in specs {
        let body = serde_json::json!({"name": name, "kind": kind, "roles": roles,
            "scopes": [{"namespaces": [namespace], "access": "mutate", "kinds": ["*"]}]});
        let (status, created) = server
            .post("/api/v1/identities", &server.admin_key, &body.to_string())
            .await;
        assert_eq!(status, 201, "{created}");
        let key = created["api_key"].as_str().unwrap().to_owned();
        let id = created["identity"]["id"].as_str().unwrap().to_owned();
        made.insert((*name).to_owned(), (key, id));
    }
    made
}

/// Each named `async fn(&TestApp)` of the invoking module as two tests, `sqlite::NAME` and `postgres::NAME`,
/// each on a fresh `TestApp` of that backend (the invoking module must have `TestApp` in scope). Used with
/// `#[macro_use] mod support;` first in `main.rs`, so every module declared after it can call it.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let app = super::TestApp::new("sqlite", stringify!($name)).await;
                super::$name(&app).await;
                app.finish().await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let app = super::TestApp::new("postgres", stringify!($name)).await;
                super::$name(&app).await;
                app.finish().await;
            })*
        }
    };
}

/// A self-signed certificate for 127.0.0.1 and localhost in `dir`: (certificate, key).
pub(crate) fn self_signed_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is needed to make a test certificate");
    assert!(status.success());
    (cert, key)
}

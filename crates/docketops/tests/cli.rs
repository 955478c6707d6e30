//! The `docketops` binary end to end: real processes, a real SQLite file or PostgreSQL database, the
//! real HTTP server. PostgreSQL is the server at DOCKETOPS_TEST_POSTGRES_URL (default
//! postgres://postgres@127.0.0.1:5432/postgres); each test makes a database of its own.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ledger_core::Reason;
use serde_json::Value;
use storage::{Store, tamper};

const BIN: &str = env!("CARGO_BIN_EXE_docketops");

#[path = "cli/chart.rs"]
mod chart;

#[path = "cli/dashboard.rs"]
mod dashboard;

#[path = "cli/clusters.rs"]
mod clusters;

#[path = "cli/kubectl.rs"]
mod kubectl;

#[path = "cli/siem.rs"]
mod siem;

#[path = "cli/sso.rs"]
mod sso;

#[path = "cli/audit.rs"]
mod audit;

#[path = "cli/mcp.rs"]
mod mcp;

#[path = "cli/templates.rs"]
mod templates;

#[path = "cli/interruptions.rs"]
mod interruptions;

#[path = "cli/duties.rs"]
mod duties;

#[path = "cli/storage_faults.rs"]
mod storage_faults;

#[path = "cli/seed.rs"]
mod seed;

fn admin_url() -> String {
    std::env::var("DOCKETOPS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A data directory and database for one test, and helpers to run the binary against them.
struct TestApp {
    dir: tempfile::TempDir,
    database_url: String,
    pg_name: Option<String>,
}

impl TestApp {
    async fn new(backend: &str, test: &str) -> TestApp {
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

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self) -> Command {
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

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Appends `count` notes through the CLI.
    fn append(&self, count: u64) {
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

    async fn store(&self) -> Store {
        Store::connect(&self.database_url).await.unwrap()
    }

    async fn finish(self) {
        if let Some(name) = &self.pg_name {
            storage::drop_postgres_database(&admin_url(), name).await.unwrap();
        }
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn verify_json(app: &TestApp, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["verify", "--json"];
    args.extend_from_slice(extra);
    let out = app.run(&args);
    let report = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&out), String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

fn reason_name(reason: Reason) -> String {
    serde_json::to_value(reason).unwrap().as_str().unwrap().to_string()
}

/// A running `docketops serve` on a free port.
struct Server {
    child: Child,
    base: String,
    admin_key: String,
}

impl Server {
    fn start(app: &TestApp) -> Server {
        Self::start_with(app, &[])
    }

    fn start_with(app: &TestApp, extra: &[&str]) -> Server {
        Self::start_on(app, "127.0.0.1:0", extra)
    }

    /// A gateway listening on `listen` (a fixed port some other process is configured to call).
    fn start_on(app: &TestApp, listen: &str, extra: &[&str]) -> Server {
        let admin_key = stdout(&app.run(&["api-key", "generate", "--kind", "human"]))
            .trim()
            .to_string();
        let mut child = app
            .command()
            .args(["serve", "--listen", listen])
            .args(extra)
            .env("DOCKETOPS_BOOTSTRAP_ADMIN_KEY", &admin_key)
            .env("RUST_LOG", "info")
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

    async fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut request = reqwest::Client::new().get(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn admin_get(&self, path: &str) -> (u16, Value) {
        self.get(path, Some(&self.admin_key.clone())).await
    }
}

/// The kinds of the `entries` of an API answer (an action, a page of the ledger), in order.
fn entry_kinds(answer: &Value) -> Vec<&str> {
    answer["entries"]
        .as_array()
        .expect("an answer with entries")
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

/// Identities with a mutate scope on every kind of `namespace`, made by the admin: name → (API key, id).
async fn create_identities(
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

impl Server {
    async fn post(&self, path: &str, key: &str, body: &str) -> (u16, Value) {
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

on_both!(
    governed_actions_end_to_end,
    cli_and_api_verify_report_each_tampering,
    export_verifies_offline_with_only_the_binary,
    api_refuses_bad_requests,
    killed_writer_loses_nothing_acknowledged,
);

/// The API's trust score and changes (paged, newest first), `docketops trust --bundle` on an export, and
/// the API again after `docketops trust rebuild` (run beside the serving gateway) agree.
async fn assert_trust_agrees(app: &TestApp, server: &Server, identity: &str) {
    let from_api = || async {
        let mut changes = Vec::new();
        let mut path = format!("/api/v1/identities/{identity}?limit=2");
        loop {
            let (status, page) = server.admin_get(&path).await;
            assert_eq!(status, 200, "{page}");
            assert_eq!(page["trust_score"], page["trust"]["score"], "{page}");
            changes.extend(page["trust"]["changes"].as_array().unwrap().iter().cloned());
            match page["trust"]["next_before_seq"].as_u64() {
                Some(before) => path = format!("/api/v1/identities/{identity}?limit=2&before_seq={before}"),
                None => {
                    changes.reverse();
                    return (page["trust_score"].as_i64().unwrap(), Value::from(changes));
                }
            }
        }
    };
    let (score, changes) = from_api().await;
    let bundle = app.dir.path().join("trust-export.jsonl");
    let out = app.run(&["export", "--out", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = app.run(&["trust", "--bundle", bundle.to_str().unwrap(), "--identity", identity]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["score"].as_i64().unwrap(), &report["changes"]),
        (score, &changes)
    );
    assert!(!changes.as_array().unwrap().is_empty(), "{report}");

    let out = app.run(&["trust", "rebuild", "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("trust scores rebuilt from"), "{}", stdout(&out));
    assert_eq!(from_api().await, (score, changes), "the rebuilt numbers are the same");
    let (status, bad) = server
        .admin_get(&format!("/api/v1/identities/{identity}?limit=201"))
        .await;
    assert_eq!(status, 400, "{bad}");
}

/// Tampers a fresh ledger in each way and checks that `docketops verify` and the API both name the
/// first bad entry and the reason.
async fn cli_and_api_verify_report_each_tampering(app: &TestApp) {
    app.append(1); // creates the ledger: genesis + 1
    let server = Server::start(app); // adds the bootstrap admin entry
    app.append(8);
    let (code, report) = verify_json(app, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["entries_checked"], 11);
    let (status, api) = server.admin_get("/api/v1/ledger/verify").await;
    assert_eq!(status, 200);
    assert_eq!(api["valid"], true);
    assert_eq!(api["head"], report["head"]);

    let store = app.store().await;
    let entry6 = store.entries_after(5, 1).await.unwrap().remove(0);
    let entry7 = store.entries_after(6, 1).await.unwrap().remove(0);
    // Applied one after another: each later tampering sits behind an earlier one, so every step
    // first repairs the previous damage.
    let changed = entry7.payload.replace("\"replicas\":3", "\"replicas\":30");
    assert_ne!(changed, entry7.payload);
    tamper::set_column(&store, 7, "payload", &changed).await.unwrap();
    expect_invalid(app, &server, 7, Reason::PayloadChanged).await;
    tamper::set_column(&store, 7, "payload", &entry7.payload).await.unwrap();

    tamper::set_column(&store, 6, "signature", &entry7.signature)
        .await
        .unwrap();
    expect_invalid(app, &server, 6, Reason::BadSignature).await;
    tamper::set_column(&store, 6, "signature", &entry6.signature)
        .await
        .unwrap();

    tamper::swap(&store, 6, 7).await.unwrap();
    expect_invalid(app, &server, 6, Reason::BrokenLink).await;
    tamper::swap(&store, 6, 7).await.unwrap();

    let (code, _) = verify_json(app, &[]);
    assert_eq!(code, 0, "repairs restore a valid ledger");
    tamper::delete(&store, 6).await.unwrap();
    expect_invalid(app, &server, 6, Reason::EntryMissing).await;
    store.close().await;
}

async fn expect_invalid(app: &TestApp, server: &Server, seq: u64, reason: Reason) {
    let (code, report) = verify_json(app, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["first_invalid"]["seq"], seq, "{report}");
    assert_eq!(report["first_invalid"]["reason"], reason_name(reason), "{report}");
    assert_eq!(report["entries_checked"], seq - 1);
    let (status, api) = server.admin_get("/api/v1/ledger/verify").await;
    assert_eq!(status, 200);
    assert_eq!(api["valid"], false);
    assert_eq!(api["first_invalid"], report["first_invalid"]);
    // The human output names the entry too.
    let out = app.run(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!("INVALID at seq {seq}")),
        "{}",
        stdout(&out)
    );
}

async fn export_verifies_offline_with_only_the_binary(app: &TestApp) {
    app.append(300);
    let bundle = app.dir.path().join("bundle.jsonl");
    let out = app.run(&["export", "--out", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Offline: an empty environment, a directory with nothing but the bundle.
    let offline = tempfile::tempdir().unwrap();
    let copy = offline.path().join("bundle.jsonl");
    std::fs::copy(&bundle, &copy).unwrap();
    let run_offline = |path: &Path, extra: &[&str]| {
        let mut args = vec!["verify", "--json", "--bundle", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = Command::new(BIN)
            .env_clear()
            .current_dir(offline.path())
            .args(&args)
            .output()
            .unwrap();
        let report: Value = serde_json::from_str(&stdout(&out)).unwrap_or(Value::Null);
        (
            out.status.code().unwrap(),
            report,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, report, _) = run_offline(&copy, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["entries_checked"], 301);
    assert!(
        !offline.path().join("docketops-data").exists(),
        "offline verify must not create anything"
    );

    // Pinning the genesis key: the right key passes, another fails.
    let genesis_key = report["keys"][0]["public_key"].as_str().unwrap().to_string();
    assert_eq!(run_offline(&copy, &["--trusted-key", &genesis_key]).0, 0);
    let other = ledger_core::LedgerSigningKey::generate().public_key().hex();
    let (code, report, _) = run_offline(&copy, &["--trusted-key", &other]);
    assert_eq!(
        (code, report["first_invalid"]["reason"].as_str()),
        (1, Some("untrusted_key"))
    );

    // A changed payload in the bundle, a cut-short bundle, a line that is not JSON.
    let text = std::fs::read_to_string(&copy).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let edited = text.replacen("\"replicas\":3", "\"replicas\":4", 1);
    let first_changed = edited.lines().position(|l| l.contains("\"replicas\":4")).unwrap() as u64;
    std::fs::write(&copy, &edited).unwrap();
    let (code, report, _) = run_offline(&copy, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["first_invalid"]["seq"], first_changed);
    assert_eq!(report["first_invalid"]["reason"], "payload_changed");

    std::fs::write(&copy, lines[..200].join("\n") + "\n").unwrap();
    let (code, report, _) = run_offline(&copy, &[]);
    assert_eq!(
        (code, report["first_invalid"]["reason"].as_str()),
        (1, Some("truncated")),
        "{report}"
    );

    let mut broken = lines.clone();
    broken[100] = "{not json";
    std::fs::write(&copy, broken.join("\n") + "\n").unwrap();
    let (code, report, _) = run_offline(&copy, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["first_invalid"]["seq"], 100);
    assert_eq!(report["first_invalid"]["reason"], "malformed");

    // A byte that is not UTF-8, and an absurdly long line: still the first invalid entry, not an I/O error.
    let mut bytes = text.clone().into_bytes();
    let at = text.match_indices('\n').nth(50).unwrap().0 + 20;
    bytes[at] = 0xff;
    std::fs::write(&copy, &bytes).unwrap();
    let (code, report, _) = run_offline(&copy, &[]);
    assert_eq!(
        (code, report["first_invalid"]["seq"].as_u64()),
        (1, Some(51)),
        "{report}"
    );
    assert_eq!(report["first_invalid"]["reason"], "malformed");
    let mut long = lines[..10].join("\n");
    long.push('\n');
    long.push_str(&"x".repeat(3 << 20));
    std::fs::write(&copy, long).unwrap();
    let (code, report, _) = run_offline(&copy, &[]);
    assert_eq!(
        (code, report["first_invalid"]["seq"].as_u64()),
        (1, Some(10)),
        "{report}"
    );

    // Usage and I/O errors exit 2.
    let (code, _, stderr) = run_offline(&offline.path().join("missing.jsonl"), &[]);
    assert_eq!(code, 2, "{stderr}");
    std::fs::write(&copy, "hello\n").unwrap();
    assert_eq!(run_offline(&copy, &[]).0, 2);
    let out = Command::new(BIN).args(["verify", "--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

async fn api_refuses_bad_requests(app: &TestApp) {
    app.append(5);
    let server = Server::start(app);
    for key in [
        None,
        Some("dkt_human_nonsense"),
        Some("Bearer"),
        Some(&*"x".repeat(10_000)),
    ] {
        let (status, body) = server.get("/api/v1/ledger/entries", key).await;
        assert_eq!(status, 401, "{key:?}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let stranger = stdout(&app.run(&["api-key", "generate"])).trim().to_string();
    assert_eq!(server.get("/api/v1/ledger/verify", Some(&stranger)).await.0, 401);

    let (status, page) = server.admin_get("/api/v1/ledger/entries?after_seq=2&limit=2").await;
    assert_eq!(status, 200);
    let seqs: Vec<u64> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [3, 4]);
    assert_eq!(page["next_after_seq"], 4);
    let id = page["entries"][0]["id"].as_str().unwrap();
    let (status, entry) = server.admin_get(&format!("/api/v1/ledger/entries/{id}")).await;
    assert_eq!((status, &entry["seq"]), (200, &Value::from(3)));

    for bad in [
        "/api/v1/ledger/entries?limit=0",
        "/api/v1/ledger/entries?limit=abc",
        "/api/v1/ledger/entries?after_seq=-1",
        "/api/v1/ledger/entries?bogus=1",
    ] {
        let (status, body) = server.admin_get(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "bad_request");
    }
    let (status, body) = server
        .admin_get("/api/v1/ledger/entries/evt_00000000000000000000000000000000")
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    assert_eq!(server.admin_get("/api/v1/ledger/entries/'%20OR%201=1").await.0, 400);
    assert_eq!(server.admin_get("/api/v1/nothing").await.0, 404);
    let (status, keys) = server.admin_get("/api/v1/ledger/keys").await;
    assert_eq!(status, 200);
    assert_eq!(keys["keys"][0]["active"], true);
    assert_eq!(keys["keys"][0]["key_id"], keys["signing_key_id"]);

    // The export endpoint streams a bundle the offline verifier accepts.
    let body = reqwest::Client::new()
        .get(format!("{}/api/v1/ledger/export", server.base))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let path = app.dir.path().join("api-export.jsonl");
    std::fs::write(&path, body).unwrap();
    let out = app.run(&["verify", "--bundle", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    assert_eq!(server.get("/healthz", None).await.0, 200);
    let (status, ready) = server.get("/readyz", None).await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));
}

/// kill -9 in the middle of a stream of appends: every acknowledged entry is there, the ledger
/// verifies, and nothing half-written remains.
async fn killed_writer_loses_nothing_acknowledged(app: &TestApp) {
    app.append(1);
    let mut child = app
        .command()
        .args([
            "ledger",
            "append",
            "-m",
            "load",
            "--repeat",
            "1000000",
            "--concurrency",
            "64",
            "--print-acks",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < 3000 {
        let line = lines.next().expect("appender exited early").unwrap();
        acked.push(line.strip_prefix("ack ").unwrap().parse::<u64>().unwrap());
    }
    child.kill().unwrap(); // SIGKILL: no shutdown path runs
    child.wait().unwrap();
    // Acks printed before the kill may still sit in the pipe.
    for line in lines {
        if let Some(seq) = line.unwrap().strip_prefix("ack ") {
            acked.push(seq.parse().unwrap());
        }
    }
    let (code, report) = verify_json(app, &[]);
    assert_eq!(code, 0, "{report}");
    let head = report["head"]["seq"].as_u64().unwrap();
    let max_acked = *acked.iter().max().unwrap();
    assert!(head >= max_acked, "acknowledged seq {max_acked} lost; head is {head}");
    let store = app.store().await;
    for seq in acked.iter().step_by(97) {
        assert_eq!(store.entries_after(*seq as i64 - 1, 1).await.unwrap()[0].seq, *seq);
    }
    assert_eq!(store.entry_count().await.unwrap(), head);
    // The ledger takes appends again after the crash.
    app.append(1);
    assert_eq!(verify_json(app, &[]).0, 0);
    store.close().await;
}

/// Two `docketops` processes append to one PostgreSQL database at the same time: one gap-free,
/// fork-free chain results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_postgres_chain() {
    let app = TestApp::new("postgres", "two_processes").await;
    app.append(1); // genesis + 1, and the shared key file in the data dir
    let spawn = || {
        app.command()
            .args([
                "ledger",
                "append",
                "-m",
                "race",
                "--repeat",
                "3000",
                "--concurrency",
                "32",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let (code, report) = verify_json(&app, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["entries_checked"], 6002);
    let store = app.store().await;
    assert_eq!(store.entry_count().await.unwrap(), 6002);
    store.close().await;
    app.finish().await;
}

#[test]
fn canonicalize_prints_rfc8785_and_hashes() {
    let run = |input: &str, args: &[&str]| {
        let mut child = Command::new(BIN)
            .args(["ledger", "canonicalize"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(r#"{"b": [1E2, 0.10], "a": "\u00e9"}"#, &[]);
    assert_eq!(stdout(&out), r#"{"a":"é","b":[100,0.1]}"#);
    let out = run(r#"{"a":1}"#, &["--hash"]);
    // sha256 of the 7 bytes {"a":1}
    assert_eq!(
        stdout(&out).trim(),
        "sha256:015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
    );
    let out = run(r#"{"a":1,"a":2}"#, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("duplicate"));
}

#[test]
fn help_teaches_the_commands() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = stdout(&out);
    for command in ["serve", "verify", "export", "ledger", "keys", "migrate", "bench"] {
        assert!(help.contains(command), "{command} missing from --help");
    }
    let out = Command::new(BIN).args(["verify", "--help"]).output().unwrap();
    assert!(stdout(&out).contains("Exit status: 0"));
}

/// A self-signed certificate for 127.0.0.1 and localhost in `dir`: (certificate, key).
fn self_signed_certificate(dir: &Path) -> (PathBuf, PathBuf) {
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

/// With a certificate and key the gateway speaks HTTPS only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_when_given_a_certificate() {
    let app = TestApp::new("sqlite", "tls").await;
    let (cert, key) = self_signed_certificate(app.dir.path());
    let server = Server::start_with(
        &app,
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let client = reqwest::Client::builder().add_root_certificate(root).build().unwrap();
    let response = client
        .get(format!("{}/api/v1/ledger/verify", server.base))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["valid"], true);
    // Plain HTTP on the TLS port gets no API answer.
    let plain = server.base.replace("https://", "http://");
    let answer = reqwest::Client::new().get(format!("{plain}/healthz")).send().await;
    assert!(answer.is_err() || !answer.unwrap().status().is_success());
    drop(server);
    app.finish().await;
}

/// `--config FILE` (or DOCKETOPS_CONFIG) supplies settings; flags and environment variables win.
#[test]
fn a_config_file_supplies_settings_that_flags_and_environment_override() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-config");
    let config = dir.path().join("docketops.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\nlog_format = \"json\"\n", data.display().to_string()),
    )
    .unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(BIN);
        command.env_clear().current_dir(dir.path()).args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let config_arg = config.to_str().unwrap();
    let out = run(&["--config", config_arg, "ledger", "append", "-m", "configured"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(data.join("ledger.db").exists() && data.join("signing-key.pem").exists());
    assert!(
        !dir.path().join("docketops-data").exists(),
        "the default data dir must not be used"
    );
    // The same file through the environment variable.
    let out = run(&["verify", "--json"], &[("DOCKETOPS_CONFIG", config_arg)]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["entries_checked"], 2);
    // A flag wins over the file: another directory, with no ledger in it.
    let elsewhere = dir.path().join("elsewhere");
    let out = run(
        &[
            "--config",
            config_arg,
            "verify",
            "--data-dir",
            elsewhere.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("elsewhere"));
    // So does the environment.
    let out = run(
        &["--config", config_arg, "verify"],
        &[("DOCKETOPS_DATA_DIR", elsewhere.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(2));
    // Unknown settings and unreadable files are errors, not silently ignored.
    std::fs::write(&config, "datadir = \"/tmp/typo\"\n").unwrap();
    let out = run(&["--config", config_arg, "verify"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["--config", "/nonexistent/docketops.toml", "verify"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

/// With the gateway's key at hand, `verify` requires the chain to include it: a ledger (re)written
/// entirely under another key is refused even though it is internally consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_requires_the_local_signing_key_in_the_chain() {
    let app = TestApp::new("sqlite", "local_key").await;
    app.append(3);
    assert_eq!(verify_json(&app, &[]).0, 0);
    let key_file = app.data_dir().join("signing-key.pem");
    let original = std::fs::read(&key_file).unwrap();
    let other = ledger_core::LedgerSigningKey::generate();
    std::fs::write(&key_file, other.to_pkcs8_pem().unwrap()).unwrap();
    let (code, report) = verify_json(&app, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["first_invalid"]["reason"], "untrusted_key");
    // Without a key file there is nothing to require; with the right one the ledger is valid again.
    std::fs::remove_file(&key_file).unwrap();
    assert_eq!(verify_json(&app, &[]).0, 0);
    std::fs::write(&key_file, original).unwrap();
    assert_eq!(verify_json(&app, &[]).0, 0);
    app.finish().await;
}

/// The real API server of `scripts/kube-testenv` (exported by `scripts/kube-testenv env`).
struct KubeTestEnv {
    server: String,
    token: String,
    ca_file: PathBuf,
}

/// The second API server of the test environment ("cluster B"; same admin token).
fn kube_test_env_b() -> KubeTestEnv {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run `scripts/kube-testenv up && eval \"$(scripts/kube-testenv env)\"` (scripts/test does)")
        })
    };
    KubeTestEnv {
        server: var("DOCKETOPS_TEST_KUBE_B_SERVER"),
        token: var("DOCKETOPS_TEST_KUBE_TOKEN"),
        ca_file: var("DOCKETOPS_TEST_KUBE_B_CA_FILE").into(),
    }
}

fn kube_test_env() -> KubeTestEnv {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run `scripts/kube-testenv up && eval \"$(scripts/kube-testenv env)\"` (scripts/test does)")
        })
    };
    KubeTestEnv {
        server: var("DOCKETOPS_TEST_KUBE_SERVER"),
        token: var("DOCKETOPS_TEST_KUBE_TOKEN"),
        ca_file: var("DOCKETOPS_TEST_KUBE_CA_FILE").into(),
    }
}

/// Fresh namespaces on the real API server with the executor's RBAC applied from `docketops kube rbac`,
/// and a kubeconfig holding the gateway service account's own token.
struct KubeWorld {
    env: KubeTestEnv,
    http: reqwest::Client,
    release: String,
    gateway_ns: String,
    app_ns: String,
    other_ns: String,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl KubeWorld {
    async fn new() -> KubeWorld {
        Self::build(kube_test_env(), None).await
    }

    /// The same namespaces, release and gateway namespace as `like`, on another API server.
    async fn mirror(like: &KubeWorld, env: KubeTestEnv) -> KubeWorld {
        Self::build(env, Some(like)).await
    }

    async fn build(env: KubeTestEnv, like: Option<&KubeWorld>) -> KubeWorld {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&env.ca_file).unwrap()).unwrap();
        let http = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
        let id = format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % 0xffff_ffff
        );
        let dir = tempfile::tempdir().unwrap();
        let name = |own: String, like: Option<&String>| like.cloned().unwrap_or(own);
        let mut world = KubeWorld {
            release: name(format!("c{id}"), like.map(|w| &w.release)),
            gateway_ns: name(format!("gw-{id}"), like.map(|w| &w.gateway_ns)),
            app_ns: name(format!("app-{id}"), like.map(|w| &w.app_ns)),
            other_ns: name(format!("other-{id}"), like.map(|w| &w.other_ns)),
            kubeconfig: dir.path().join("gateway.kubeconfig"),
            env,
            http,
            _dir: dir,
        };
        for ns in [world.gateway_ns.clone(), world.app_ns.clone(), world.other_ns.clone()] {
            world
                .admin_send(
                    reqwest::Method::POST,
                    "/api/v1/namespaces",
                    &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                )
                .await;
        }
        let out = Command::new(BIN)
            .args([
                "kube",
                "rbac",
                "-n",
                &world.app_ns,
                "--release",
                &world.release,
                "--gateway-namespace",
                &world.gateway_ns,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(list["kind"], "List");
        for item in list["items"].as_array().unwrap() {
            world.admin_apply(item).await;
        }
        let token = world
            .admin_send(
                reqwest::Method::POST,
                &format!(
                    "/api/v1/namespaces/{}/serviceaccounts/{}-gateway/token",
                    world.gateway_ns, world.release
                ),
                &serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
            )
            .await;
        std::fs::write(
            &world.kubeconfig,
            serde_json::json!({"apiVersion": "v1", "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": world.env.server, "certificate-authority": world.env.ca_file}}],
                "users": [{"name": "gateway", "user": {"token": token["status"]["token"]}}],
                "contexts": [{"name": "gateway", "context": {"cluster": "c", "user": "gateway"}}],
                "current-context": "gateway"})
            .to_string(),
        )
        .unwrap();
        world.kubeconfig = world.kubeconfig.clone();
        world
    }

    async fn admin_send(&self, method: reqwest::Method, path: &str, body: &Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.env.server))
            .bearer_auth(&self.env.token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn admin_get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.env.server))
            .bearer_auth(&self.env.token)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    /// Server-side apply as the cluster admin, as `kubectl apply --server-side` would.
    async fn admin_apply(&self, item: &Value) {
        let api_version = item["apiVersion"].as_str().unwrap();
        let root = if api_version.contains('/') { "apis" } else { "api" };
        let plural = format!("{}s", item["kind"].as_str().unwrap().to_lowercase());
        let name = item["metadata"]["name"].as_str().unwrap();
        let path = match item["metadata"]["namespace"].as_str() {
            Some(ns) => format!("/{root}/{api_version}/namespaces/{ns}/{plural}/{name}"),
            None => format!("/{root}/{api_version}/{plural}/{name}"),
        };
        let response = self
            .http
            .patch(format!("{}{path}?fieldManager=tests&force=true", self.env.server))
            .bearer_auth(&self.env.token)
            .header("content-type", "application/apply-patch+yaml")
            .body(item.to_string())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.text().await.unwrap()
        );
    }

    /// A Deployment `name` in the governed namespace, made by the admin.
    async fn deployment(&self, name: &str, replicas: u32) {
        self.admin_apply(&serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.app_ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]}}}}))
            .await;
    }

    fn serve_args(&self) -> Vec<String> {
        vec![
            "--kubeconfig".into(),
            self.kubeconfig.display().to_string(),
            "--release".into(),
            self.release.clone(),
            "--gateway-namespace".into(),
            self.gateway_ns.clone(),
            // No controllers run in the test API server: check the spec, do not wait for rollouts.
            "--rollout-timeout".into(),
            "0".into(),
        ]
    }
}

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

/// The product brief's example against the real API server: an agent with a staging scope scales
/// `web-api` to 5 through the gateway; then denials of each kind, bad requests, and the ledger verifies.
async fn governed_actions_end_to_end(app: &TestApp) {
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    let args = world.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(app, &args);

    let (status, created) = server
        .post(
            "/api/v1/identities",
            &server.admin_key,
            &serde_json::json!({"name": "ci-bot", "kind": "agent", "roles": ["operator"],
                "scopes": [{"namespaces": [ns], "access": "mutate", "kinds": ["Deployment"]}]})
            .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let agent = created["api_key"].as_str().unwrap().to_owned();

    let scale = |namespace: &str, replicas: u64, justification: Option<&str>| {
        let mut body = serde_json::json!({"action_type": "SCALE", "namespace": namespace, "resource_kind": "Deployment",
            "resource_name": "web-api", "parameters": {"replicas": replicas}});
        if let Some(j) = justification {
            body["justification"] = j.into();
        }
        body.to_string()
    };
    // The product brief's Python example (examples/scale.py, Python `requests`) against this gateway.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scale.py");
    let out = Command::new("python3")
        .arg(&example)
        .env("LEDGER_URL", &server.base)
        .env("API_KEY", &agent)
        .env("NAMESPACE", &ns)
        .output()
        .unwrap();
    let printed = stdout(&out);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("Status: COMPLETED\n"), "{printed}");
    assert!(printed.contains("Ledger ID: evt_"), "{printed}");
    assert!(
        printed.contains("Event Hash: sha256:") && printed.contains("Chain Hash: sha256:"),
        "{printed}"
    );
    assert!(printed.contains("Signature Verified: True\n"), "{printed}");
    let (_, newest) = server.get("/api/v1/actions?limit=1", Some(&agent)).await;
    let action_id = newest["actions"][0]["action_id"].as_str().unwrap().to_owned();
    let (status, first) = server.get(&format!("/api/v1/actions/{action_id}"), Some(&agent)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["action"]["status"], "COMPLETED", "{first}");
    assert!(
        printed.contains(first["action"]["last_entry_id"].as_str().unwrap()),
        "{printed}"
    );
    let live = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(live["spec"]["replicas"], 5, "the Deployment really has 5 replicas");

    // The same again through reqwest, for the response's JSON shape (5 → 5 changes nothing, and passes).
    let (status, result) = server
        .post(
            "/api/v1/actions",
            &agent,
            &scale(&ns, 5, Some("Scale up for load test")),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["risk"], "MEDIUM");
    assert_eq!(result["decision"]["outcome"], "allow");
    assert_eq!(result["decision"]["mode"], "enforce");
    assert!(result["ledger_entry_id"].as_str().unwrap().starts_with("evt_"));
    for field in ["event_hash", "chain_hash"] {
        let hash = result[field].as_str().unwrap();
        assert!(hash.starts_with("sha256:") && hash.len() == 71, "{field}: {hash}");
    }
    assert_eq!(result["signature_verified"], true);
    let live = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(live["spec"]["replicas"], 5, "the Deployment really has 5 replicas");

    // The action with its chain of entries, in order.
    let action_id = result["action_id"].as_str().unwrap();
    let (status, action) = server.get(&format!("/api/v1/actions/{action_id}"), Some(&agent)).await;
    assert_eq!(status, 200, "{action}");
    let kinds = entry_kinds(&action);
    assert_eq!(
        kinds,
        [
            "action.requested",
            "risk.classified",
            "policy.decided",
            "action.executed",
            "outcome.verified"
        ]
    );
    assert_eq!(action["action"]["status"], "COMPLETED");
    assert_eq!(result["entries"].as_array().unwrap().len(), 5);
    // Rollout waiting is off here, so the change's own answer settled the verification (no read-back), and
    // it names the resourceVersion the change left.
    let payload = |kind: &str| -> Value {
        let entry = action["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap();
        match &entry["payload"] {
            Value::String(text) => serde_json::from_str(text).unwrap(),
            object => object.clone(),
        }
    };
    let verified = payload("outcome.verified");
    assert_eq!(verified["observed_in"], "answer", "{verified}");
    assert_eq!(
        verified["observed_resource_version"],
        live["metadata"]["resourceVersion"]
    );
    assert_eq!(
        payload("action.executed")["execution"]["resource_version"],
        live["metadata"]["resourceVersion"]
    );

    // Denials: guardrail (kube-system), scope (another namespace), policy (an agent without justification).
    for (body, reason) in [
        (scale("kube-system", 1, Some("x")), "namespace_blocked"),
        (scale(&world.other_ns, 1, Some("x")), "scope"),
        (scale(&ns, 4, None), "justification"),
    ] {
        let (status, denied) = server.post("/api/v1/actions", &agent, &body).await;
        assert_eq!(status, 200, "{denied}");
        assert_eq!(denied["status"], "DENIED", "{denied}");
        assert!(
            denied["decision"]["reasons"].to_string().contains(reason),
            "{reason}: {denied}"
        );
        assert_eq!(denied["signature_verified"], true);
    }
    let live = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(live["spec"]["replicas"], 5, "no denied action touched the Deployment");
    // HIGH risk (scale to zero) waits for an approval.
    let (_, pending) = server
        .post("/api/v1/actions", &agent, &scale(&ns, 0, Some("night")))
        .await;
    assert_eq!(pending["status"], "PENDING_APPROVAL", "{pending}");
    assert_eq!(pending["risk"], "HIGH");

    // Bad requests: 400 with the field named, recorded; malformed JSON; no key; wrong role.
    let (status, bad) = server
        .post(
            "/api/v1/actions",
            &agent,
            r#"{"action_type": "REBOOT", "namespace": "x", "resource_kind": "Deployment"}"#,
        )
        .await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("action_type"),
        "{bad}"
    );
    let (status, _) = server.post("/api/v1/actions", &agent, r#"{"action_type": "#).await;
    assert_eq!(status, 400);
    let injection = scale(&ns, 1, Some("x")).replace("web-api", "web-api/../../secrets");
    let (status, bad) = server.post("/api/v1/actions", &agent, &injection).await;
    assert_eq!(status, 400, "{bad}");
    let (status, _) = server
        .post("/api/v1/actions", "dkt_agent_nope", &scale(&ns, 1, Some("x")))
        .await;
    assert_eq!(status, 401);
    let (status, _) = server
        .post("/api/v1/actions", &server.admin_key, &scale(&ns, 1, Some("x")))
        .await;
    assert_eq!(status, 403, "the admin has no operator role");

    let (_, page) = server.admin_get("/api/v1/ledger/entries?limit=1000").await;
    let rejected = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "action.rejected")
        .count();
    assert_eq!(rejected, 3, "both invalid actions and the malformed JSON are recorded");

    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "docketops_actions_total{status=\"COMPLETED\"} 2",
        "docketops_actions_total{status=\"DENIED\"} 3",
        "docketops_actions_total{status=\"PENDING_APPROVAL\"} 1",
        "docketops_policy_decisions_total{outcome=\"allow\",mode=\"enforce\"} 2",
        "docketops_risk_classifications_total{level=\"HIGH\"} 1",
        "docketops_http_requests_total{method=\"POST\",route=\"/api/v1/actions\",status=\"400\"} 3",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
    assert!(metrics.contains("docketops_ledger_appended_entries"), "{metrics}");
    let agent_id = created["identity"]["id"].as_str().unwrap();
    assert_trust_agrees(app, &server, agent_id).await;
    drop(server);

    // Replaying the recorded decisions: the shipped policy decides as before; a candidate that freezes
    // everything would change every decision.
    let out = app.run(&["policy", "replay"]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("replayed 4 decisions") && text.contains("0 would change"),
        "{text}"
    );
    let frozen = app.dir.path().join("frozen.rego");
    std::fs::write(
        &frozen,
        "package docketops.policy\nimport rego.v1\ndecision := {\"outcome\": \"deny\", \"reasons\": [\"change freeze\"]}\n",
    )
    .unwrap();
    let out = app.run(&["policy", "replay", "--policy", frozen.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("changed ") && text.contains("allow -> deny  (change freeze)"),
        "{text}"
    );
    assert!(text.contains("3 would change"), "{text}");
    let out = app.run(&["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// Settings from a config file ([guardrails], [risk], policy_mode = "ledger"): in ledger mode a policy
/// deny is recorded and the action still runs; an unreachable OPA server in enforce mode fails closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_mode_from_config_and_opa_down_fails_closed() {
    let app = TestApp::new("sqlite", "ledger_mode").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 1).await;
    let config = app.dir.path().join("docketops.toml");
    std::fs::write(
        &config,
        format!(
            r#"policy_mode = "ledger"
rollout_timeout = 0

[guardrails]
allowed_namespaces = ["{ns}"]

[risk.tiers]
production = ["prod-*"]

[[risk.rules]]
id = "web-api-is-critical"
level = "HIGH"
reason = "web-api serves customers"
namespaces = ["{ns}"]
action_types = ["SCALE"]
"#
        ),
    )
    .unwrap();
    let mut args = world.serve_args();
    args.retain(|a| a != "--rollout-timeout" && a != "0");
    args.extend(["--config".to_owned(), config.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let (_, created) = server
        .post(
            "/api/v1/identities",
            &server.admin_key,
            &serde_json::json!({"name": "bot", "kind": "agent", "roles": ["operator"],
                "scopes": [{"namespaces": ["*"], "access": "mutate", "kinds": ["*"]}]})
            .to_string(),
        )
        .await;
    let agent = created["api_key"].as_str().unwrap().to_owned();
    let body = serde_json::json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment",
        "resource_name": "web-api", "parameters": {"replicas": 3}})
    .to_string();
    let (status, result) = server.post("/api/v1/actions", &agent, &body).await;
    assert_eq!(status, 200, "{result}");
    // No justification: the default policy denies; in ledger mode that is recorded, not enforced.
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["decision"]["outcome"], "deny");
    assert_eq!(result["decision"]["mode"], "ledger");
    assert_eq!(result["risk"], "HIGH", "the rule from the config file fired");
    let live = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(live["spec"]["replicas"], 3);
    // The guardrail allow-list from the file holds in every mode.
    let other = body.replace(&ns, &world.other_ns);
    let (_, denied) = server.post("/api/v1/actions", &agent, &other).await;
    assert_eq!(denied["status"], "DENIED", "{denied}");
    assert!(
        denied["decision"]["reasons"]
            .to_string()
            .contains("namespace_not_allowed"),
        "{denied}"
    );
    drop(server);

    // Enforce mode with an OPA server that is not there: fail closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let opa = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut args = world.serve_args();
    args.extend(["--opa-url".to_owned(), opa]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let justified = body.replace("\"parameters\"", "\"justification\": \"test\", \"parameters\"");
    let (status, result) = server.post("/api/v1/actions", &agent, &justified).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "DENIED", "{result}");
    assert!(
        result["decision"]["reasons"]
            .to_string()
            .contains("policy evaluation failed"),
        "{result}"
    );
    let live = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(live["spec"]["replicas"], 3, "nothing ran");
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}

/// `docketops identities` on the database: create (key printed once), list, suspend, revoke, each a ledger
/// entry; bad scopes are refused; a gateway started afterwards still creates its bootstrap admin and
/// refuses the CLI-made agent's key once it is revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_from_the_command_line() {
    let app = TestApp::new("sqlite", "identities_cli").await;
    let out = app.run(&[
        "identities",
        "create",
        "--name",
        "ci-bot",
        "--kind",
        "agent",
        "--role",
        "operator",
        "--scope",
        "mutate:staging:Deployment",
        "--scope",
        "read:*:*",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    let mut lines = text.lines();
    let identity: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let key = lines.next().unwrap().to_owned();
    assert!(key.starts_with("dkt_agent_"), "{text}");
    assert_eq!(identity["scopes"][0]["access"], "mutate");
    assert_eq!(identity["created_by"].as_str().unwrap().split(':').next(), Some("cli"));
    let id = identity["id"].as_str().unwrap().to_owned();

    let out = app.run(&[
        "identities",
        "create",
        "--name",
        "x",
        "--kind",
        "agent",
        "--role",
        "operator",
        "--scope",
        "write:a:Pod",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown access"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = app.run(&[
        "identities",
        "create",
        "--name",
        "ci-bot",
        "--kind",
        "agent",
        "--role",
        "operator",
    ]);
    assert_eq!(out.status.code(), Some(2), "duplicate name");

    let listed = stdout(&app.run(&["identities", "list"]));
    assert_eq!(listed.lines().count(), 1);
    assert!(!listed.contains(&key), "keys are never listed");

    // A gateway on this database: no admin yet, so it creates the bootstrap admin; the agent's key works.
    let server = Server::start(&app);
    let (status, me) = server.get(&format!("/api/v1/identities/{id}"), Some(&key)).await;
    assert_eq!(status, 200, "{me}");
    let out = app.run(&["identities", "suspend", &id, "--reason", "rotation drill"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(server.get(&format!("/api/v1/identities/{id}"), Some(&key)).await.0, 401);
    assert!(app.run(&["identities", "reactivate", &id]).status.success());
    assert_eq!(server.get(&format!("/api/v1/identities/{id}"), Some(&key)).await.0, 200);
    assert!(app.run(&["identities", "revoke", &id]).status.success());
    assert_eq!(server.get(&format!("/api/v1/identities/{id}"), Some(&key)).await.0, 401);
    assert_eq!(
        app.run(&["identities", "reactivate", &id]).status.code(),
        Some(2),
        "revoked for good"
    );

    let (_, page) = server.admin_get("/api/v1/ledger/entries?limit=100").await;
    let kinds = entry_kinds(&page);
    assert_eq!(
        kinds,
        [
            "ledger.initialized",
            "identity.created",
            "identity.created",
            "identity.suspended",
            "identity.reactivated",
            "identity.revoked"
        ]
    );
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}

/// Approvals against the real API server: a HIGH-risk DELETE waits, an approver approves it, it executes once,
/// and the chain holds approval.requested → approval.granted → action.executed → outcome.verified; approval
/// by the requester, by a non-approver, a replayed approval, an approval after expiry and an approval of a
/// target that changed are refused with clear errors and recorded; a rejection ends an action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_end_to_end() {
    let app = TestApp::new("sqlite", "approvals").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    for name in ["web-api", "api-2", "api-3", "api-4"] {
        world.deployment(name, 2).await;
    }
    // The approval webhook: a bare HTTP listener that keeps what it is sent.
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/hook", hook.local_addr().unwrap());
    let (hook_tx, hook_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in hook.incoming() {
            let Ok(mut stream) = stream else { break };
            stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut received = Vec::new();
            let mut buffer = [0u8; 8192];
            // Read the head and the whole body (Content-Length), then answer 204.
            loop {
                let n = stream.read(&mut buffer).unwrap_or(0);
                received.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&received).to_string();
                let complete = text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
                    head.lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .is_some_and(|length| body.len() >= length)
                });
                if n == 0 || complete {
                    break;
                }
            }
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
            let _ = hook_tx.send(String::from_utf8_lossy(&received).to_string());
        }
    });
    let mut args = world.serve_args();
    args.extend([
        "--approval-window".to_owned(),
        "4".to_owned(),
        "--approval-webhook".to_owned(),
        hook_url,
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let made = create_identities(
        &server,
        &ns,
        &[
            ("agent", "agent", &["operator"]),
            ("alice", "human", &["operator", "approver"]),
            ("bob", "human", &["approver"]),
            ("carol", "human", &["operator"]),
        ],
    )
    .await;
    let keys: std::collections::HashMap<&str, String> =
        made.iter().map(|(n, (k, _))| (n.as_str(), k.clone())).collect();
    let submit = |key: String, body: Value| {
        let server = &server;
        async move { server.post("/api/v1/actions", &key, &body.to_string()).await }
    };
    let delete = |name: &str| {
        serde_json::json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                           "resource_name": name, "justification": "decommission"})
    };
    let approve = |key: String, id: String| {
        let server = &server;
        async move {
            server
                .post(&format!("/api/v1/approvals/{id}/approve"), &key, r#"{"comment": "ok"}"#)
                .await
        }
    };

    // Alice (operator and approver) asks to delete web-api: HIGH risk, so it waits.
    let (_, pending) = submit(keys["alice"].clone(), delete("web-api")).await;
    assert_eq!(pending["status"], "PENDING_APPROVAL", "{pending}");
    assert_eq!(pending["risk"], "HIGH");
    let id = pending["action_id"].as_str().unwrap().to_owned();
    let notified = hook_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the webhook was called");
    assert!(notified.starts_with("POST /hook "), "{notified}");
    let payload: Value = serde_json::from_str(notified.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(payload["event"], "approval.requested");
    assert_eq!(payload["action_id"], id.as_str());
    assert_eq!(payload["risk"], "HIGH");
    assert_eq!(payload["action"]["resource_name"], "web-api");
    assert!(payload["digest"].as_str().unwrap().starts_with("sha256:"));
    let (status, list) = server.get("/api/v1/approvals?status=pending", Some(&keys["bob"])).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["approvals"][0]["action"]["action_id"], id.as_str());
    assert!(list["approvals"][0]["digest"].as_str().unwrap().starts_with("sha256:"));

    // Refused: the requester herself, a non-approver.
    let (status, body) = approve(keys["alice"].clone(), id.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("its own action"),
        "{body}"
    );
    let (status, body) = approve(keys["carol"].clone(), id.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("not an approver"),
        "{body}"
    );

    // Bob approves while Alice long-polls for the result: it executes, once, and her wait ends with it.
    let wait_path = format!("/api/v1/actions/{id}?wait=20");
    let waiting = server.get(&wait_path, Some(&keys["alice"]));
    let approving = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        approve(keys["bob"].clone(), id.clone()).await
    };
    let ((_, waited), (status, done)) = tokio::join!(waiting, approving);
    assert_eq!(
        waited["action"]["status"], "COMPLETED",
        "the long poll saw the end: {waited}"
    );
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["signature_verified"], true);
    let gone = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(gone["code"], 404, "{gone}");
    // A replayed approval does nothing twice.
    let (status, body) = approve(keys["bob"].clone(), id.clone()).await;
    assert_eq!(status, 409, "{body}");
    let (_, action) = server.get(&format!("/api/v1/actions/{id}"), Some(&keys["alice"])).await;
    let kinds = entry_kinds(&action);
    let order: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| {
            [
                "approval.requested",
                "approval.granted",
                "action.executed",
                "outcome.verified",
            ]
            .contains(k)
        })
        .collect();
    assert_eq!(
        order,
        [
            "approval.requested",
            "approval.granted",
            "action.executed",
            "outcome.verified"
        ],
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "approval.refused").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| **k == "action.executed").count(), 1);

    // The target changes behind the approver's back: refused, and a fresh approval is requested.
    let (_, pending) = submit(keys["agent"].clone(), delete("api-2")).await;
    let id2 = pending["action_id"].as_str().unwrap().to_owned();
    world.deployment("api-2", 7).await;
    let (status, body) = approve(keys["bob"].clone(), id2.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("changed"), "{body}");
    // An approval names the digest it approves: the old one no longer applies, the fresh one does.
    let (_, list) = server.get("/api/v1/approvals?status=pending", Some(&keys["bob"])).await;
    let fresh = list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"]["action_id"] == id2.as_str())
        .map(|a| a["digest"].as_str().unwrap().to_owned())
        .unwrap();
    let stale = format!(r#"{{"digest": "sha256:{}"}}"#, "0".repeat(64));
    let (status, body) = server
        .post(&format!("/api/v1/approvals/{id2}/approve"), &keys["bob"], &stale)
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("names digest"),
        "{body}"
    );
    let named = format!(r#"{{"digest": "{fresh}", "comment": "reviewed the new diff"}}"#);
    let (status, done) = server
        .post(&format!("/api/v1/approvals/{id2}/approve"), &keys["bob"], &named)
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "COMPLETED", "the fresh approval applies: {done}");

    // A rejection ends the action.
    let (_, pending) = submit(keys["agent"].clone(), delete("api-3")).await;
    let id3 = pending["action_id"].as_str().unwrap().to_owned();
    let (status, rejected) = server
        .post(
            &format!("/api/v1/approvals/{id3}/reject"),
            &keys["bob"],
            r#"{"comment": "no"}"#,
        )
        .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["status"], "REJECTED");
    let still = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/api-3"))
        .await;
    assert_eq!(still["metadata"]["name"], "api-3");

    // After the window (4 s here) the action becomes EXPIRED by itself (nobody lists or decides it
    // meanwhile; plain GETs do not expire anything) and can no longer be approved.
    let (_, pending) = submit(keys["agent"].clone(), delete("api-4")).await;
    let id4 = pending["action_id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let status_of_4 = || async {
        let (_, action) = server
            .get(&format!("/api/v1/actions/{id4}"), Some(&keys["agent"]))
            .await;
        action["action"]["status"].as_str().unwrap().to_owned()
    };
    while status_of_4().await == "PENDING_APPROVAL" && started.elapsed() < Duration::from_secs(12) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status_of_4().await, "EXPIRED");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "not before the window passed"
    );
    let (status, body) = approve(keys["bob"].clone(), id4.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("EXPIRED"), "{body}");
    let (_, action) = server
        .get(&format!("/api/v1/actions/{id4}"), Some(&keys["agent"]))
        .await;
    let kinds = entry_kinds(&action);
    assert!(
        kinds.contains(&"approval.expired") && kinds.contains(&"approval.refused"),
        "{kinds:?}"
    );
    let still = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/api-4"))
        .await;
    assert_eq!(still["metadata"]["name"], "api-4");
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}

/// A policy that asks for two approvals: one approval leaves the action pending, the same approver cannot
/// count twice, and the second distinct approver's approval executes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_can_ask_for_two_approvals() {
    let app = TestApp::new("sqlite", "two_approvals").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 2).await;
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/two_approvals_for_high.rego");
    let mut args = world.serve_args();
    args.extend(["--policy".to_owned(), policy.to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let made = create_identities(
        &server,
        &ns,
        &[
            ("agent", "agent", &["operator"]),
            ("bob", "human", &["approver"]),
            ("dave", "human", &["approver"]),
            ("root", "human", &["admin", "operator"]),
        ],
    )
    .await;
    let mut keys: std::collections::HashMap<&str, String> =
        made.iter().map(|(n, (k, _))| (n.as_str(), k.clone())).collect();
    // An admin that also submits actions makes itself an approver: that approver cannot decide its actions.
    let puppet = serde_json::json!({"name": "puppet", "kind": "human", "roles": ["approver"], "scopes": []});
    let (status, created) = server
        .post("/api/v1/identities", &keys["root"], &puppet.to_string())
        .await;
    assert_eq!(status, 201, "{created}");
    keys.insert("puppet", created["api_key"].as_str().unwrap().to_owned());
    world.deployment("own-app", 1).await;
    let own = serde_json::json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                                 "resource_name": "own-app", "justification": "mine"});
    let (_, own) = server.post("/api/v1/actions", &keys["root"], &own.to_string()).await;
    assert_eq!(own["status"], "PENDING_APPROVAL", "{own}");
    let own_path = format!("/api/v1/approvals/{}/approve", own["action_id"].as_str().unwrap());
    let (status, body) = server.post(&own_path, &keys["puppet"], "{}").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("created by the requester"),
        "{body}"
    );

    let body = serde_json::json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                                  "resource_name": "web-api", "justification": "decommission"});
    let (_, pending) = server.post("/api/v1/actions", &keys["agent"], &body.to_string()).await;
    assert_eq!(pending["status"], "PENDING_APPROVAL", "{pending}");
    let id = pending["action_id"].as_str().unwrap().to_owned();
    let (_, list) = server.get("/api/v1/approvals?status=pending", Some(&keys["bob"])).await;
    let listed = list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"]["action_id"] == id.as_str())
        .unwrap();
    assert_eq!(listed["approvals_required"], 2, "{list}");
    let path = format!("/api/v1/approvals/{id}/approve");

    let (status, first) = server.post(&path, &keys["bob"], "{}").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "PENDING_APPROVAL", "one of two approvals: {first}");
    let (status, again) = server.post(&path, &keys["bob"], "{}").await;
    assert_eq!(status, 409, "the same approver counts once: {again}");
    let still = world
        .admin_get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/web-api"))
        .await;
    assert_eq!(still["metadata"]["name"], "web-api", "nothing runs on one approval");

    let (status, done) = server.post(&path, &keys["dave"], "{}").await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let (_, action) = server.get(&format!("/api/v1/actions/{id}"), Some(&keys["agent"])).await;
    let entries = action["entries"].as_array().unwrap();
    let decided = entries.iter().find(|e| e["kind"] == "policy.decided").unwrap();
    assert_eq!(decided["payload"]["approvals"], 2, "{decided}");
    let granted: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "approval.granted").collect();
    assert_eq!(granted.len(), 2, "{action}");
    assert_eq!(granted[0]["payload"]["approvals"], 1);
    assert_eq!(granted[1]["payload"]["approvals"], 2);
    assert_ne!(granted[0]["payload"]["approver"], granted[1]["payload"]["approver"]);
    let executed = entries.iter().position(|e| e["kind"] == "action.executed").unwrap();
    let last_grant = entries.iter().rposition(|e| e["kind"] == "approval.granted").unwrap();
    assert!(last_grant < executed, "executed only after the second approval");

    // One approval given, then the target changes: that approval no longer counts, and its approver can
    // approve the fresh digest (the action then still needs a second approver).
    world.deployment("api-b", 2).await;
    let body = serde_json::json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                                  "resource_name": "api-b", "justification": "decommission"});
    let (_, pending) = server.post("/api/v1/actions", &keys["agent"], &body.to_string()).await;
    let path = format!("/api/v1/approvals/{}/approve", pending["action_id"].as_str().unwrap());
    let (status, first) = server.post(&path, &keys["bob"], "{}").await;
    assert_eq!(first["status"], "PENDING_APPROVAL", "{status} {first}");
    world.deployment("api-b", 4).await;
    let (status, changed) = server.post(&path, &keys["dave"], "{}").await;
    assert_eq!(status, 409, "the target changed: {changed}");
    let (status, again) = server.post(&path, &keys["bob"], "{}").await;
    assert_eq!(status, 200, "bob approves the fresh digest: {again}");
    assert_eq!(
        again["status"], "PENDING_APPROVAL",
        "bob's old approval does not count twice: {again}"
    );
    let (status, done) = server.post(&path, &keys["dave"], "{}").await;
    assert_eq!((status, done["status"].as_str()), (200, Some("COMPLETED")), "{done}");
    drop(server);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}

/// Two gateway processes on one PostgreSQL: two approvers approve the same action at the same moment, one
/// through each gateway; the action executes exactly once (three rounds, to give the race a chance).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_execute_an_approved_action_once() {
    let app = TestApp::new("postgres", "approval_race").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    let args = world.serve_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = Server::start_with(&app, &args);
    let second = Server::start_with(&app, &args);
    let made = create_identities(
        &first,
        &ns,
        &[
            ("agent", "agent", &["operator"]),
            ("bob", "human", &["approver"]),
            ("dave", "human", &["approver"]),
        ],
    )
    .await;
    let keys: std::collections::HashMap<&str, String> =
        made.iter().map(|(n, (k, _))| (n.as_str(), k.clone())).collect();
    for round in 0..3 {
        let name = format!("race-{round}");
        world.deployment(&name, 1).await;
        let body = serde_json::json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
                                      "resource_name": name, "justification": "race"});
        let (_, pending) = first.post("/api/v1/actions", &keys["agent"], &body.to_string()).await;
        assert_eq!(pending["status"], "PENDING_APPROVAL", "{pending}");
        let id = pending["action_id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/approvals/{id}/approve");
        let (a, b) = tokio::join!(
            first.post(&path, &keys["bob"], "{}"),
            second.post(&path, &keys["dave"], "{}")
        );
        // Both answers are fine (the one that lost the claim reports the action's status as it finds it,
        // which may already be COMPLETED); what matters is that the ledger holds one execution.
        for (status, answer) in [&a, &b] {
            assert!(*status == 200 || *status == 409, "{status} {answer}");
        }
        let (_, action) = first.get(&format!("/api/v1/actions/{id}"), Some(&keys["agent"])).await;
        let executed = action["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "action.executed")
            .count();
        assert_eq!(executed, 1, "{action}");
        assert_eq!(action["action"]["status"], "COMPLETED");
    }
    drop(first);
    drop(second);
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}

/// Trust: with a gate of 5 for MEDIUM risk, a new agent's MEDIUM action waits for an approval; once approved
/// and verified it has earned 5 and the next one runs; a failure lowers the score; `docketops trust` on an
/// export reproduces the server's number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_is_earned_and_recomputable() {
    let app = TestApp::new("sqlite", "trust").await;
    let world = KubeWorld::new().await;
    let ns = world.app_ns.clone();
    world.deployment("web-api", 1).await;
    let config = app.dir.path().join("trust.toml");
    std::fs::write(&config, "[trust]\nmedium_min = 5\n").unwrap();
    let mut args = world.serve_args();
    args.extend(["--config".to_owned(), config.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(&app, &args);
    let made = create_identities(
        &server,
        &ns,
        &[("agent", "agent", &["operator"]), ("bob", "human", &["approver"])],
    )
    .await;
    let keys: std::collections::HashMap<&str, String> =
        made.iter().map(|(n, (k, _))| (n.as_str(), k.clone())).collect();
    let ids: std::collections::HashMap<&str, String> = made.iter().map(|(n, (_, i))| (n.as_str(), i.clone())).collect();
    let scale = |replicas: u64| {
        serde_json::json!({"action_type": "SCALE", "namespace": ns, "resource_kind": "Deployment",
            "resource_name": "web-api", "parameters": {"replicas": replicas}, "justification": "trust test"})
        .to_string()
    };
    let trust = || async {
        let (_, me) = server
            .get(&format!("/api/v1/identities/{}", ids["agent"]), Some(&keys["agent"]))
            .await;
        me["trust_score"].as_i64().unwrap_or_else(|| panic!("{me}"))
    };
    assert_eq!(trust().await, 0, "a new identity starts at 0");

    let (_, gated) = server.post("/api/v1/actions", &keys["agent"], &scale(2)).await;
    assert_eq!(gated["status"], "PENDING_APPROVAL", "{gated}");
    assert!(
        gated["decision"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("trust 0 is below the 5"),
        "{gated}"
    );
    let id = gated["action_id"].as_str().unwrap();
    let (_, approved) = server
        .post(&format!("/api/v1/approvals/{id}/approve"), &keys["bob"], "{}")
        .await;
    assert_eq!(approved["status"], "COMPLETED", "{approved}");
    assert_eq!(trust().await, 5, "one verified MEDIUM success");

    let (_, allowed) = server.post("/api/v1/actions", &keys["agent"], &scale(3)).await;
    assert_eq!(allowed["status"], "COMPLETED", "earned: {allowed}");
    assert_eq!(trust().await, 10);

    let missing = serde_json::json!({"action_type": "DELETE", "namespace": ns, "resource_kind": "Deployment",
        "resource_name": "does-not-exist", "justification": "oops"});
    let (_, failed) = server
        .post("/api/v1/actions", &keys["agent"], &missing.to_string())
        .await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    let score = trust().await;
    assert_eq!(score, 5, "a failure lowers the score");

    let bundle = app.dir.path().join("export.jsonl");
    let out = app.run(&["export", "--out", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = app.run(&[
        "trust",
        "--bundle",
        bundle.to_str().unwrap(),
        "--identity",
        &ids["agent"],
        "--score-only",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        stdout(&out).trim(),
        score.to_string(),
        "the auditor's number is the server's"
    );
    let out = app.run(&[
        "trust",
        "--bundle",
        bundle.to_str().unwrap(),
        "--identity",
        &ids["agent"],
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["changes"].as_array().unwrap().len(), 3, "{report}");
    assert_trust_agrees(&app, &server, &ids["agent"]).await;

    // Scores that miss entries (as after an upgrade, until the catch-up) may be too high: the gate fails
    // closed and the recorded policy input says why.
    let (_, earned) = server.post("/api/v1/actions", &keys["agent"], &scale(4)).await;
    assert_eq!(earned["status"], "COMPLETED", "{earned}");
    let store = app.store().await;
    let head = store.head().await.unwrap().unwrap().seq;
    tamper::set_trust_state(&store, head - 1, ledger_core::trust::SCORING_VERSION)
        .await
        .unwrap();
    let (_, stale) = server.post("/api/v1/actions", &keys["agent"], &scale(5)).await;
    assert_eq!(stale["status"], "PENDING_APPROVAL", "{stale}");
    assert!(
        stale["decision"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("trust 0 is below the 5"),
        "{stale}"
    );
    let (_, action) = server
        .admin_get(&format!("/api/v1/actions/{}", stale["action_id"].as_str().unwrap()))
        .await;
    let decided = action["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "policy.decided")
        .unwrap();
    assert_eq!(
        decided["payload"]["input"]["identity"]["trust_stale"], true,
        "{decided}"
    );
    drop(server);
    app.finish().await;
}

#[path = "cli/transparency.rs"]
mod transparency;

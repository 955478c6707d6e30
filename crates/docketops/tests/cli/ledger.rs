//! The ledger through the binary and the API: `verify` and `GET /api/v1/ledger/verify` on each tampering,
//! offline bundle verification in an empty environment, the API's refusals, a writer killed with SIGKILL,
//! two processes appending to one PostgreSQL, canonicalization, and the local signing key required in the
//! chain.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use ledger_core::Reason;
use serde_json::Value;
use storage::tamper;

use super::{BIN, Server, TestApp, stdout, verify_json};

on_both!(
    cli_and_api_verify_report_each_tampering,
    export_verifies_offline_with_only_the_binary,
    api_refuses_bad_requests,
    killed_writer_loses_nothing_acknowledged,
);

fn reason_name(reason: Reason) -> String {
    serde_json::to_value(reason).unwrap().as_str().unwrap().to_string()
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

//! The transparency log end to end against the real binary: the gateway's checkpoints, tiles and proofs
//! checked by an independent implementation (Go's golang.org/x/mod/sumdb/{note,tlog}, tools/tlog-oracle) on
//! a ledger of over 100,000 entries with a key rotation; and the attacks a key-holding operator could try
//! (a rewritten past re-signed with the real key, a cut tail), each named by `docketops verify`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ledger_core::bundle::{BundleHead, BundleHeader, entry_line, parse_entry_line};
use ledger_core::{ChainHead, Entry, LedgerSigningKey, PreparedEvent};
use serde_json::Value;

use super::{Server, TestApp, stdout};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Go oracle, built once per test process (scripts/ensure-tlog-oracle; DOCKETOPS_TLOG_ORACLE names a
/// prebuilt one).
fn oracle() -> &'static Path {
    static ORACLE: OnceLock<PathBuf> = OnceLock::new();
    ORACLE.get_or_init(|| {
        if let Ok(path) = std::env::var("DOCKETOPS_TLOG_ORACLE")
            && !path.is_empty()
        {
            return PathBuf::from(path);
        }
        let out = Command::new(repo_root().join("scripts/ensure-tlog-oracle"))
            .output()
            .expect("scripts/ensure-tlog-oracle runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        PathBuf::from(stdout.lines().last().expect("the oracle's path").trim())
    })
}

/// Waits until the gateway has signed a checkpoint of at least `size` entries; returns its JSON.
async fn checkpoint_of(server: &Server, size: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = server.admin_get("/api/v1/ledger/checkpoint").await;
        if status == 200 && body["size"].as_u64().unwrap() >= size {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of {size} entries: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn head(app: &TestApp) -> u64 {
    app.store().await.head().await.unwrap().map_or(0, |e| e.seq)
}

fn export(app: &TestApp, path: &Path) -> Vec<Entry> {
    let out = app.run(&["export", "--quiet", "--out", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().skip(1).map(|l| parse_entry_line(l).unwrap()).collect()
}

fn write_bundle(path: &Path, entries: &[Entry], like: &Path) {
    let first = std::fs::read_to_string(like).unwrap();
    let mut header = BundleHeader::parse(first.lines().next().unwrap()).unwrap();
    header.entries = entries.len() as u64;
    header.head = entries.last().map(|e| BundleHead {
        seq: e.seq,
        chain_hash: e.chain_hash.parse().unwrap(),
    });
    let mut text = header.to_line() + "\n";
    for entry in entries {
        text.push_str(&entry_line(entry));
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// Re-seals `entries` from `from_seq` on with `key`, as an operator holding the key could.
fn reseal(entries: &[Entry], from_seq: u64, key: &LedgerSigningKey) -> Vec<Entry> {
    let keep = &entries[..from_seq as usize - 1];
    let head = keep
        .last()
        .map_or(ChainHead::EMPTY, |e| ledger_core::chain::head_of(e).unwrap());
    let events = entries[from_seq as usize - 1..]
        .iter()
        .map(|e| {
            let event = ledger_core::NewEvent {
                kind: e.kind.clone(),
                actor: e.actor.clone(),
                action_id: e.action_id.clone(),
                payload: e.payload_value().unwrap(),
            };
            PreparedEvent::prepare_with_id(event, e.id.clone(), e.timestamp.clone()).unwrap()
        })
        .collect();
    let mut out = keep.to_vec();
    out.extend(ledger_core::seal(&head, events, key));
    out
}

fn verify(app: &TestApp, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["verify", "--json", "--quiet"];
    all.extend_from_slice(args);
    let out = app.run(&all);
    let report = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&out), String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

async fn rewritten_and_cut_ledgers_are_named_against_a_kept_checkpoint(app: &TestApp) {
    app.append(300);
    let server = Server::start(app);
    let size = head(app).await;
    let kept = checkpoint_of(&server, size).await;
    // A log keeps its origin: a gateway started with another one, once checkpoints are signed, refuses.
    let out = app.run(&["serve", "--listen", "127.0.0.1:0", "--log-origin", "other.test/log"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("keeps its origin for life"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("checkpoint.txt");
    std::fs::write(&checkpoint, kept["note"].as_str().unwrap()).unwrap();
    let bundle = dir.path().join("ledger.jsonl");
    let entries = export(app, &bundle);
    let (bundle_arg, cp_arg) = (bundle.to_str().unwrap(), checkpoint.to_str().unwrap());

    let (code, report) = verify(app, &["--bundle", bundle_arg, "--checkpoint", cp_arg]);
    assert_eq!(
        (code, report["checkpoint"]["result"].as_str()),
        (0, Some("consistent")),
        "{report}"
    );

    // The operator rewrites entry 100's payload and re-signs everything after it with the real key: the
    // bundle alone verifies, but not against the checkpoint it signed before.
    let key =
        LedgerSigningKey::from_pkcs8_pem(&std::fs::read_to_string(app.data_dir().join("signing-key.pem")).unwrap())
            .unwrap();
    let mut forged = entries.clone();
    forged[99].payload = r#"{"replicas":30}"#.to_string();
    let forged = reseal(&forged, 100, &key);
    let rewritten = dir.path().join("rewritten.jsonl");
    write_bundle(&rewritten, &forged, &bundle);
    let (code, alone) = verify(app, &["--bundle", rewritten.to_str().unwrap()]);
    assert_eq!(
        (code, alone["valid"].as_bool()),
        (0, Some(true)),
        "re-signed with the real key: {alone}"
    );
    let (code, report) = verify(app, &["--bundle", rewritten.to_str().unwrap(), "--checkpoint", cp_arg]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["checkpoint"]["result"], "forked", "{report}");
    assert!(
        report["checkpoint"]["message"].as_str().unwrap().contains("rewritten"),
        "{report}"
    );

    // The last 20 entries cut (header adjusted): valid alone, truncated against the checkpoint.
    let cut = dir.path().join("cut.jsonl");
    write_bundle(&cut, &entries[..entries.len() - 20], &bundle);
    let (code, report) = verify(app, &["--bundle", cut.to_str().unwrap(), "--checkpoint", cp_arg]);
    assert_eq!(
        (code, report["checkpoint"]["result"].as_str()),
        (1, Some("truncated")),
        "{report}"
    );
    assert!(
        report["checkpoint"]["message"]
            .as_str()
            .unwrap()
            .contains("the last 20 were cut"),
        "{report}"
    );

    // A checkpoint the operator signs for the forged history is refused by a verifier that requires a
    // witness's cosignature: it has none.
    let witness = ledger_core::tlog::checkpoint::WitnessSigner::new("witness.test/w1", ed25519_dalek_key(7)).unwrap();
    let vkey = witness.public().to_vkey();
    let origin = kept["origin"].as_str().unwrap();
    let witness_args = ["--witness-key", &vkey, "--origin", origin];
    let (code, report) = verify(
        app,
        &[&["--bundle", bundle_arg, "--checkpoint", cp_arg][..], &witness_args[..]].concat(),
    );
    assert_eq!(
        (code, report["checkpoint"]["result"].as_str()),
        (1, Some("untrusted")),
        "{report}"
    );
    // Witnesses vouch for one history per origin: naming witnesses without the origin is refused.
    let out = app.run(&[
        "verify",
        "--bundle",
        bundle_arg,
        "--checkpoint",
        cp_arg,
        "--witness-key",
        &vkey,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--origin"), "{stderr}");

    // A receipt fetched from the gateway verifies offline with only the ledger key; edited, it does not.
    let entry = &entries[41];
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/ledger/receipts/{}?wait=10", server.base, entry.id))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let receipt = dir.path().join("receipt.tlog-proof");
    std::fs::write(&receipt, response.text().await.unwrap()).unwrap();
    let public = key.public_key().hex();
    let (code, report) = verify(app, &["--receipt", receipt.to_str().unwrap(), "--trusted-key", &public]);
    assert_eq!((code, report["valid"].as_bool()), (0, Some(true)), "{report}");
    let text = std::fs::read_to_string(&receipt).unwrap();
    let lines: Vec<&str> = text.split('\n').collect();
    let edited = text.replacen(lines[3], lines[4], 1);
    std::fs::write(&receipt, edited).unwrap();
    let (code, report) = verify(app, &["--receipt", receipt.to_str().unwrap(), "--trusted-key", &public]);
    assert_eq!((code, report["reason"].as_str()), (1, Some("not_included")), "{report}");
    let other = LedgerSigningKey::generate().public_key().hex();
    std::fs::write(&receipt, &text).unwrap();
    let (code, report) = verify(app, &["--receipt", receipt.to_str().unwrap(), "--trusted-key", &other]);
    assert_eq!(
        (code, report["reason"].as_str()),
        (1, Some("untrusted_key")),
        "{report}"
    );
}

fn ed25519_dalek_key(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

/// Over 100,000 entries (seeded, then back-filled into the tree at start), checkpoints under two keys
/// around a rotation: the Go oracle verifies every checkpoint note with note.Open, the tiles with its own
/// tile reader and tlog.TreeHash, every entry bundle, 200 inclusion proofs with tlog.CheckRecord and the
/// consistency proofs between stored checkpoints with tlog.CheckTree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_oracle_accepts_the_log_of_a_large_ledger_across_a_key_rotation() {
    let app = TestApp::new("sqlite", "tlog_oracle").await;
    let out = app.run(&["seed-history", "--actions", "20000", "--yes", "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server = Server::start(&app);
    let first = checkpoint_of(&server, head(&app).await).await;
    let admin_key = server.admin_key.clone();
    drop(server);

    let out = app.run(&["keys", "rotate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.append(2500);
    let size = head(&app).await;
    assert!(size > 100_000, "{size} entries");
    let mut server = Server::start(&app);
    // The bootstrap key only counts on the first start: keep the first admin's.
    server.admin_key = admin_key;
    let latest = checkpoint_of(&server, size).await;
    assert_ne!(first["key_id"], latest["key_id"], "checkpoints under both keys");
    let vkeys: Vec<String> = latest["verifier_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(vkeys.len(), 2, "{latest}");

    let mut command = Command::new(oracle());
    command.args(["-url", &server.base, "-token", &server.admin_key]);
    for vkey in &vkeys {
        command.args(["-vkey", vkey]);
    }
    let out = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the oracle refused the log: {stderr}\n{}",
        stdout(&out)
    );
    let summary: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["entries_checked"].as_u64(), Some(size), "{summary}");
    assert_eq!(summary["keys_verified"].as_array().unwrap().len(), 2, "{summary}");
    assert!(summary["checkpoints_checked"].as_u64().unwrap() >= 2, "{summary}");
    assert!(summary["negative_controls"].as_u64().unwrap() >= 4, "{summary}");
    app.finish().await;
}

/// A witness process on a fixed port (so the gateway's config stays right across a restart).
struct WitnessProcess {
    dir: tempfile::TempDir,
    name: String,
    vkey: String,
    listen: String,
    child: Option<std::process::Child>,
}

fn free_port() -> String {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().to_string()
}

impl WitnessProcess {
    fn new(app: &TestApp, name: &str, origin: &str, log_vkey: &str) -> WitnessProcess {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("witness.pem");
        let out = app.run(&[
            "witness",
            "keygen",
            "--name",
            name,
            "--key-file",
            key_file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let vkey = stdout(&out).trim().to_string();
        let config = format!(
            "name = {name:?}\nkey_file = {:?}\ndatabase = {:?}\n\n[[logs]]\norigin = {origin:?}\nkeys = [{log_vkey:?}]\n",
            key_file.to_str().unwrap(),
            dir.path().join("witness.db").to_str().unwrap(),
        );
        std::fs::write(dir.path().join("witness.toml"), config).unwrap();
        let mut witness = WitnessProcess {
            dir,
            name: name.to_string(),
            vkey,
            listen: free_port(),
            child: None,
        };
        witness.start(app);
        witness
    }

    fn start(&mut self, app: &TestApp) {
        let child = app
            .command()
            .args(["witness", "serve", "--listen", &self.listen, "--config"])
            .arg(self.dir.path().join("witness.toml"))
            .stderr(std::fs::File::create(self.dir.path().join("witness.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(&self.listen).is_err() {
            let log = || std::fs::read_to_string(self.dir.path().join("witness.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "witness {} did not start: {}",
                self.name,
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.listen)
    }
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn transparency_status(server: &Server) -> Value {
    let (status, body) = server.admin_get("/api/v1/ledger/transparency").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls the status until `done` holds (20 s at most).
async fn wait_status(server: &Server, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = transparency_status(server).await;
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct MemoryTiles(std::collections::HashMap<(u8, u64), Vec<u8>>);

impl ledger_core::tlog::proofs::TileSource for MemoryTiles {
    fn tile(&self, level: u8, index: u64) -> Option<&[u8]> {
        self.0.get(&(level, index)).map(Vec::as_slice)
    }
}

/// A tree over `entries` in memory: its tiles and its signed checkpoint of all of them.
fn tree_of(entries: &[Entry], origin: &str, key: &LedgerSigningKey) -> (MemoryTiles, String) {
    use ledger_core::tlog::{TreeEdge, checkpoint::Checkpoint, leaf_hash};
    let mut edge = TreeEdge::empty();
    let mut tiles = MemoryTiles(Default::default());
    for w in edge.append(entries.iter().map(|e| leaf_hash(&e.chain_hash.parse().unwrap()))) {
        tiles.0.insert((w.level, w.index), w.data);
    }
    let checkpoint = Checkpoint {
        origin: origin.to_string(),
        size: edge.size(),
        root: edge.root(),
    };
    (tiles, checkpoint.sign(key).unwrap())
}

async fn add_checkpoint(
    witness: &WitnessProcess,
    old: u64,
    proof: Vec<ledger_core::tlog::Hash>,
    note: String,
) -> (u16, String) {
    let body = ledger_core::tlog::witness::AddCheckpoint {
        old_size: old,
        proof,
        checkpoint: note,
    }
    .to_body();
    let response = reqwest::Client::new()
        .post(format!("{}/add-checkpoint", witness.url()))
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn witnesses_cosign_and_refuse_a_split_view(app: &TestApp) {
    const ORIGIN: &str = "ledger.test/docketops";
    app.append(20);
    let key_pem = std::fs::read_to_string(app.data_dir().join("signing-key.pem")).unwrap();
    let key = LedgerSigningKey::from_pkcs8_pem(&key_pem).unwrap();
    let log_vkey = ledger_core::tlog::checkpoint::log_verifier_key(ORIGIN, &key.public_key());
    let w1 = WitnessProcess::new(app, "w1.test/witness", ORIGIN, &log_vkey);
    let mut w2 = WitnessProcess::new(app, "w2.test/witness", ORIGIN, &log_vkey);
    let config = app.data_dir().join("../gateway.toml");
    let witnesses: String = [&w1, &w2]
        .iter()
        .map(|w| format!("[[witnesses]]\nurl = {:?}\nkey = {:?}\n\n", w.url(), w.vkey))
        .collect();
    std::fs::write(
        &config,
        format!("log_origin = {ORIGIN:?}\nwitness_quorum = 2\n\n{witnesses}"),
    )
    .unwrap();
    let server = Server::start_with(app, &["--config", config.to_str().unwrap()]);

    // Both witnesses cosign: the served checkpoint carries both lines and verifies with the quorum.
    app.append(30);
    let size = head(app).await;
    wait_status(&server, "both witnesses cosign", |s| {
        s["cosigned_size"].as_u64() >= Some(size)
    })
    .await;
    let note = reqwest::Client::new()
        .get(format!("{}/checkpoint", server.base))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        note.contains("— w1.test/witness ") && note.contains("— w2.test/witness "),
        "{note}"
    );
    let dir = tempfile::tempdir().unwrap();
    let (bundle, checkpoint) = (dir.path().join("b.jsonl"), dir.path().join("cp.txt"));
    std::fs::write(&checkpoint, &note).unwrap();
    export(app, &bundle);
    let args = [
        "--bundle",
        bundle.to_str().unwrap(),
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ];
    let (code, report) = verify(
        app,
        &[
            &args[..],
            &["--witness-key", &w1.vkey, "--witness-key", &w2.vkey, "--origin", ORIGIN],
        ]
        .concat(),
    );
    assert_eq!(
        (code, report["checkpoint"]["cosigned_by"].as_array().map(Vec::len)),
        (0, Some(2)),
        "{report}"
    );

    // A receipt waited for carries both cosignatures and verifies offline with the witness quorum and origin.
    let entry_id = app.store().await.entries_after(size as i64 - 2, 1).await.unwrap()[0]
        .id
        .clone();
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/ledger/receipts/{entry_id}?wait=20", server.base))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let receipt = dir.path().join("r.tlog-proof");
    std::fs::write(&receipt, response.text().await.unwrap()).unwrap();
    let public = key.public_key().hex();
    let receipt_args = [
        "--receipt",
        receipt.to_str().unwrap(),
        "--trusted-key",
        &public,
        "--origin",
        ORIGIN,
    ];
    let witness_args = ["--witness-key", &w1.vkey, "--witness-key", &w2.vkey];
    let (code, report) = verify(app, &[&receipt_args[..], &witness_args[..]].concat());
    assert_eq!(
        (code, report["checkpoint"]["cosigned_by"].as_array().map(Vec::len)),
        (0, Some(2)),
        "{report}"
    );
    let wrong_origin = [
        "--receipt",
        receipt.to_str().unwrap(),
        "--trusted-key",
        &public,
        "--origin",
        "other.test/log",
    ];
    let (code, report) = verify(app, &wrong_origin);
    assert_eq!(
        (code, report["reason"].as_str()),
        (1, Some("checkpoint_not_trusted")),
        "{report}"
    );

    // A witness down delays cosigning, never appending; its lag shows, and it catches up when back.
    w2.kill();
    app.append(10);
    let later = head(app).await;
    let status = wait_status(&server, "w1 alone cosigns", |s| {
        s["witnesses"][0]["cosigned_size"].as_u64() >= Some(later)
    })
    .await;
    assert!(
        status["cosigned_size"].as_u64().unwrap() < later,
        "no quorum without w2: {status}"
    );
    assert!(status["witnesses"][1]["lag"].as_u64().unwrap() > 0, "{status}");
    w2.start(app);
    app.append(1);
    let last = head(app).await;
    wait_status(&server, "w2 back", |s| s["cosigned_size"].as_u64() >= Some(last)).await;

    // Split view: the operator signs another history (entry 5 rewritten, everything re-signed with the real
    // key) and shows it to a witness. Same size, other root: 409. Grown, with a consistency proof from
    // its own tree: 422, as the proof cannot start from the root the witness holds.
    let entries = export(app, &bundle);
    assert_eq!(entries.len() as u64, last);
    let mut forked = entries.clone();
    forked[4].payload = r#"{"replicas":99}"#.to_string();
    let mut forked = reseal(&forked, 5, &key);
    let (status, body) = add_checkpoint(&w1, last, vec![], tree_of(&forked, ORIGIN, &key).1).await;
    assert_eq!(status, 409, "same size, other root: {body}");
    let more = (0..3).map(|i| {
        let event = ledger_core::NewEvent::new("ledger.note", "usr_forger", serde_json::json!({"i": i}));
        PreparedEvent::prepare(event, time::OffsetDateTime::now_utc()).unwrap()
    });
    let tip = ledger_core::chain::head_of(forked.last().unwrap()).unwrap();
    forked.extend(ledger_core::seal(&tip, more.collect(), &key));
    let (tiles, grown) = tree_of(&forked, ORIGIN, &key);
    let proof = ledger_core::tlog::proofs::consistency_proof(last, forked.len() as u64, &tiles).unwrap();
    let (status, body) = add_checkpoint(&w1, last, proof, grown).await;
    assert_eq!(status, 422, "a forked extension: {body}");
    // A replayed old checkpoint: 409 with the witness's size.
    let (status, body) = add_checkpoint(&w1, 0, vec![], tree_of(&entries[..10], ORIGIN, &key).1).await;
    assert_eq!((status, body.trim()), (409, last.to_string().as_str()));
    // The gateway's view is untouched: still cosigned by both at the real head.
    let status = transparency_status(&server).await;
    assert_eq!(status["cosigned_size"].as_u64(), Some(last), "{status}");
}

on_both!(
    rewritten_and_cut_ledgers_are_named_against_a_kept_checkpoint,
    witnesses_cosign_and_refuse_a_split_view,
);

/// The log never signs a checkpoint inconsistent with one it signed: an edited stored checkpoint (or tiles
/// that no longer give its root) stops signing, and a size another gateway signed with another root is
/// reported as a fork.
async fn the_log_never_signs_two_inconsistent_checkpoints(app: &TestApp) {
    use gateway::transparency::TransparencyError;
    app.append(10);
    let store = app.store().await;
    let key_pem = std::fs::read_to_string(app.data_dir().join("signing-key.pem")).unwrap();
    let key = || LedgerSigningKey::from_pkcs8_pem(&key_pem).unwrap();
    let log = gateway::Transparency::new(store.clone(), key(), gateway::TransparencyConfig::local("t.test/log"));
    let first = log.checkpoint_once().await.unwrap().expect("a first checkpoint");
    assert!(
        log.checkpoint_once().await.unwrap().is_none(),
        "nothing new, nothing signed"
    );

    app.append(5);
    let forged_root = ledger_core::tlog::hash_to_base64(&ledger_core::tlog::Hash([7; 32]));
    storage::tamper::set_checkpoint_root(&store, first.size as u64, &forged_root)
        .await
        .unwrap();
    let refused = log.checkpoint_once().await;
    assert!(
        matches!(refused, Err(TransparencyError::Inconsistent { .. })),
        "{refused:?}"
    );
    storage::tamper::set_checkpoint_root(&store, first.size as u64, &first.root_hash)
        .await
        .unwrap();

    // Tiles that do not end with the ledger's last entry (restored from another history): refused.
    let last = store.tree_size().await.unwrap() - 1;
    let tile = store.tile(0, last / 256).await.unwrap().unwrap();
    let mut edited = tile.to_vec();
    edited[(last % 256) as usize * 32] ^= 1;
    storage::tamper::set_tile(&store, 0, last / 256, &edited).await.unwrap();
    let refused = log.checkpoint_once().await;
    assert!(
        matches!(refused, Err(TransparencyError::TreeMismatch { .. })),
        "{refused:?}"
    );
    storage::tamper::set_tile(&store, 0, last / 256, &tile).await.unwrap();

    // A leaf under the signed checkpoint edited while the gateway holds that tile and root in memory: the
    // check reads the database past every cache.
    store.tree_root(first.size as u64).await.unwrap();
    store.inclusion_proof(first.size as u64, 0).await.unwrap();
    let tile = store.tile(0, 0).await.unwrap().unwrap();
    let mut edited = tile.to_vec();
    edited[0] ^= 1;
    storage::tamper::set_tile(&store, 0, 0, &edited).await.unwrap();
    let refused = log.checkpoint_once().await;
    assert!(
        matches!(refused, Err(TransparencyError::Inconsistent { .. })),
        "{refused:?}"
    );
    storage::tamper::set_tile(&store, 0, 0, &tile).await.unwrap();

    // Another gateway stored the next size first, with another root (a fork): this one signs nothing on
    // top of it, and reports it as soon as the tree grows past it.
    let head = store.head().await.unwrap().unwrap().seq;
    let other = storage::CheckpointRow {
        size: head as i64,
        root_hash: forged_root,
        note: "forged".into(),
        key_id: first.key_id.clone(),
        created_at: first.created_at.clone(),
    };
    store.insert_checkpoint(&other).await.unwrap();
    assert!(log.checkpoint_once().await.unwrap().is_none());
    app.append(1);
    let refused = log.checkpoint_once().await;
    assert!(
        matches!(refused, Err(TransparencyError::Inconsistent { .. })),
        "{refused:?}"
    );
    assert_eq!(
        store.latest_checkpoint().await.unwrap().unwrap().size as u64,
        head,
        "nothing signed after it"
    );
}

mod inconsistent {
    use super::*;
    on_both!(the_log_never_signs_two_inconsistent_checkpoints);
}

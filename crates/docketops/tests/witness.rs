//! `docketops witness` end to end: the real binary and its SQLite file, spoken to over HTTP. The logs are
//! built here with ledger_core (trees, consistency proofs, signed checkpoints), so no gateway is needed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ledger_core::LedgerSigningKey;
use ledger_core::tlog::checkpoint::{self, Checkpoint, WitnessKey, add_signature_lines, log_verifier_key};
use ledger_core::tlog::proofs::{TileSource, consistency_proof};
use ledger_core::tlog::witness::AddCheckpoint;
use ledger_core::tlog::{TreeEdge, root_of};
use serde_json::Value;
use storage::witness::WitnessStore;

const BIN: &str = env!("CARGO_BIN_EXE_docketops");
const ORIGIN: &str = "ledger.example.com/docketops";
const WITNESS: &str = "witness.example.com/w1";

/// A log's whole history in memory: its checkpoint at every size and the tiles of its final tree.
struct Log {
    checkpoints: Vec<Checkpoint>,
    tiles: HashMap<(u8, u64), Vec<u8>>,
}

struct Tiles<'a>(&'a HashMap<(u8, u64), Vec<u8>>);

impl TileSource for Tiles<'_> {
    fn tile(&self, level: u8, index: u64) -> Option<&[u8]> {
        self.0.get(&(level, index)).map(Vec::as_slice)
    }
}

impl Log {
    /// A log of `leaves` leaves; another `salt` makes another history (a fork).
    fn new(origin: &str, leaves: u64, salt: u8) -> Log {
        let mut edge = TreeEdge::empty();
        let mut tiles = HashMap::new();
        let at = |size: u64, root| Checkpoint {
            origin: origin.into(),
            size,
            root,
        };
        let mut checkpoints = vec![at(0, root_of(&[]))];
        for i in 0..leaves {
            let leaf = tlog_leaf(salt, i);
            for write in edge.append([leaf]) {
                tiles.insert((write.level, write.index), write.data);
            }
            checkpoints.push(at(edge.size(), edge.root()));
        }
        Log { checkpoints, tiles }
    }

    /// The request that moves the witness from `old` to `size`, signed with `key`.
    fn request(&self, old: u64, size: u64, key: &LedgerSigningKey) -> AddCheckpoint {
        let proof = match old {
            0 => vec![],
            old if old == size => vec![],
            old => consistency_proof(old, size, &Tiles(&self.tiles)).unwrap(),
        };
        AddCheckpoint {
            old_size: old,
            proof,
            checkpoint: self.checkpoints[size as usize].sign(key).unwrap(),
        }
    }
}

fn tlog_leaf(salt: u8, i: u64) -> ledger_core::tlog::Hash {
    ledger_core::tlog::leaf_hash(&ledger_core::Digest::of(&[&[salt][..], &i.to_be_bytes()].concat()))
}

fn log_key(seed: u8) -> LedgerSigningKey {
    LedgerSigningKey::from_seed([seed; 32])
}

fn vkey(origin: &str, key: &LedgerSigningKey) -> String {
    log_verifier_key(origin, &key.public_key())
}

/// An answer of the witness.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    text: String,
}

impl Answer {
    /// The latest size a 409 for a size mismatch tells.
    fn latest_size(&self) -> u64 {
        assert_eq!(
            (self.status, self.content_type.as_str()),
            (409, "text/x.tlog.size"),
            "{self:?}"
        );
        assert!(self.text.ends_with('\n'), "{self:?}");
        self.text.trim_end().parse().unwrap()
    }
}

async fn post(client: &reqwest::Client, base: &str, body: impl Into<reqwest::Body>) -> reqwest::Result<Answer> {
    let response = client.post(format!("{base}/add-checkpoint")).body(body).send().await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    Ok(Answer {
        status,
        content_type,
        text: response.text().await?,
    })
}

/// A witness process with its own directory, key, config and database.
struct Witness {
    dir: tempfile::TempDir,
    config: PathBuf,
    key: WitnessKey,
    child: Option<Child>,
    base: String,
    client: reqwest::Client,
}

impl Witness {
    /// A witness following the logs `(origin, verifier keys)`, started.
    fn start(logs: &[(&str, Vec<String>)]) -> Witness {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("keys/witness.pem");
        let out = command(&dir)
            .args(["witness", "keygen", "--name", WITNESS, "--key-file"])
            .arg(&key_file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let key = WitnessKey::parse(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
        let mut config = format!(
            "name = {WITNESS:?}\nkey_file = {:?}\ndatabase = {:?}\n",
            key_file,
            dir.path().join("data/witness.db")
        );
        for (origin, keys) in logs {
            config.push_str(&format!("\n[[logs]]\norigin = {origin:?}\nkeys = {keys:?}\n"));
        }
        let config_path = dir.path().join("witness.toml");
        std::fs::write(&config_path, config).unwrap();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut witness = Witness {
            dir,
            config: config_path,
            key,
            child: None,
            base: String::new(),
            client,
        };
        witness.restart();
        witness
    }

    /// Starts the process (again) on a free port and waits for its listening line.
    fn restart(&mut self) {
        let mut child = command(&self.dir)
            .args(["witness", "serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        self.base = loop {
            assert!(Instant::now() < deadline, "the witness did not start: {seen:?}");
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("the witness exited: {seen:?}"))
                .unwrap();
            if let Some(i) = line.find("listening on http") {
                break line[i + "listening on ".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_string();
            }
            seen.push(line);
        };
        // Keep draining the log so the witness never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown of any kind.
    fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    async fn post(&self, request: &AddCheckpoint) -> Answer {
        post(&self.client, &self.base, request.to_body()).await.unwrap()
    }

    /// `docketops witness status`: the log's entry.
    fn status(&self, origin: &str) -> Value {
        let out = self.run(&["witness", "status", "--config", self.config.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let status: Value = serde_json::from_slice(&out.stdout).unwrap();
        let logs = status["logs"].as_array().unwrap();
        logs.iter().find(|l| l["origin"] == origin).unwrap().clone()
    }

    fn run(&self, args: &[&str]) -> Output {
        command(&self.dir).args(args).output().unwrap()
    }

    /// The witness's database, opened beside the running process.
    async fn store(&self) -> WitnessStore {
        WitnessStore::open(&self.dir.path().join("data/witness.db"))
            .await
            .unwrap()
    }

    /// Opens `note` with the witness's cosignature `line` added: the witness's timestamp.
    fn cosigned_at(&self, request: &AddCheckpoint, line: &str, log: &LedgerSigningKey) -> u64 {
        assert!(
            line.starts_with(&format!("— {WITNESS} ")) && line.ends_with('\n'),
            "{line:?}"
        );
        let note = add_signature_lines(&request.checkpoint, &[line.to_string()]);
        let opened = checkpoint::open(&note, &[log.public_key()], std::slice::from_ref(&self.key), 1).unwrap();
        assert_eq!(opened.cosigned_by.len(), 1);
        assert_eq!(opened.cosigned_by[0].0, WITNESS);
        opened.cosigned_by[0].1
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn command(dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .current_dir(dir.path());
    command
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn one_log(key: &LedgerSigningKey) -> Witness {
    Witness::start(&[(ORIGIN, vec![vkey(ORIGIN, key)])])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_checkpoint_is_cosigned_and_the_cosignature_verifies() {
    let (key, log) = (log_key(1), Log::new(ORIGIN, 40, 0));
    let witness = one_log(&key);
    let request = log.request(0, 10, &key);
    let before = unix_now();
    let answer = witness.post(&request).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.content_type.starts_with("text/plain"), "{answer:?}");
    let timestamp = witness.cosigned_at(&request, &answer.text, &key);
    assert!((before..=unix_now()).contains(&timestamp), "{timestamp}");
    let status = witness.status(ORIGIN);
    assert_eq!(status["size"], 10);
    assert_eq!(status["cosigned_at"], timestamp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consistent_extension_is_cosigned() {
    let (key, log) = (log_key(1), Log::new(ORIGIN, 300, 0));
    let witness = one_log(&key);
    let mut last = 0;
    // Within a tile, across tiles, and the same checkpoint again (old size = size, same root).
    for (old, size) in [(0, 10), (10, 25), (25, 290), (290, 290)] {
        let request = log.request(old, size, &key);
        let answer = witness.post(&request).await;
        assert_eq!(answer.status, 200, "{old} → {size}: {answer:?}");
        let timestamp = witness.cosigned_at(&request, &answer.text, &key);
        assert!(timestamp >= last, "cosignature timestamps never go back");
        last = timestamp;
    }
    assert_eq!(witness.status(ORIGIN)["size"], 290);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_old_checkpoint_gets_409_with_the_latest_size() {
    let (key, log) = (log_key(1), Log::new(ORIGIN, 40, 0));
    let witness = one_log(&key);
    assert_eq!(witness.post(&log.request(0, 10, &key)).await.status, 200);
    assert_eq!(witness.post(&log.request(10, 25, &key)).await.status, 200);
    for (old, size) in [(0, 10), (10, 25), (0, 25), (10, 30)] {
        let answer = witness.post(&log.request(old, size, &key)).await;
        assert_eq!(answer.latest_size(), 25, "{old} → {size}");
    }
    assert_eq!(witness.status(ORIGIN)["size"], 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_view_is_refused_and_kept_as_evidence() {
    let key = log_key(1);
    let (log, fork) = (Log::new(ORIGIN, 40, 0), Log::new(ORIGIN, 40, 1));
    let witness = one_log(&key);
    assert_eq!(witness.post(&log.request(0, 10, &key)).await.status, 200);
    // The same size with another root.
    let answer = witness.post(&fork.request(10, 10, &key)).await;
    assert_eq!(answer.status, 409, "{answer:?}");
    assert!(answer.content_type.starts_with("text/plain"), "{answer:?}");
    // A bigger tree of the forked history: its proof cannot connect it to what the witness cosigned.
    let answer = witness.post(&fork.request(10, 30, &key)).await;
    assert_eq!(answer.status, 422, "{answer:?}");
    let status = witness.status(ORIGIN);
    assert_eq!(
        (status["size"].as_u64(), status["evidence"].as_u64()),
        (Some(10), Some(2))
    );
    // The honest history goes on.
    assert_eq!(witness.post(&log.request(10, 30, &key)).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_origin_gets_404() {
    let key = log_key(1);
    let witness = one_log(&key);
    let other = Log::new("other.example/log", 10, 0);
    let answer = witness.post(&other.request(0, 5, &key)).await;
    assert_eq!(answer.status, 404, "{answer:?}");
    assert!(answer.text.contains("other.example/log"), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_unknown_log_signature_gets_403() {
    let (key, log) = (log_key(1), Log::new(ORIGIN, 40, 0));
    let witness = one_log(&key);
    let stranger = log_key(9);
    let answer = witness.post(&log.request(0, 10, &stranger)).await;
    assert_eq!(answer.status, 403, "{answer:?}");
    // The log's own signature over other text: the root changed after signing.
    let mut forged = log.request(0, 10, &key);
    let root = |size: usize| ledger_core::tlog::hash_to_base64(&log.checkpoints[size].root);
    forged.checkpoint = forged.checkpoint.replacen(&root(10), &root(11), 1);
    let answer = witness.post(&forged).await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(witness.status(ORIGIN)["size"], 0, "nothing was cosigned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_body_gets_400_and_other_methods_405() {
    let (key, log) = (log_key(1), Log::new(ORIGIN, 40, 0));
    let witness = one_log(&key);
    let note = log.request(0, 10, &key).checkpoint;
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"hello".to_vec(),
        format!("old ten\n\n{note}").into_bytes(),
        format!("old 0\nnot a hash\n\n{note}").into_bytes(),
        format!("old 0\n\n{ORIGIN}\nten\nroot\n\n— {ORIGIN} AAAA\n").into_bytes(),
        [b"old 0\n\n".as_slice(), &[0xff, 0xfe], note.as_bytes()].concat(),
    ];
    for body in bodies {
        let answer = post(&witness.client, &witness.base, body.clone()).await.unwrap();
        assert_eq!(answer.status, 400, "{:?}: {answer:?}", String::from_utf8_lossy(&body));
        assert!(answer.content_type.starts_with("text/plain"), "{answer:?}");
    }
    let too_big = vec![b'a'; (1 << 20) + 1];
    assert_eq!(post(&witness.client, &witness.base, too_big).await.unwrap().status, 413);
    let get = witness
        .client
        .get(format!("{}/add-checkpoint", witness.base))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let health = witness
        .client
        .get(format!("{}/healthz", witness.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_size_above_the_checkpoint_size_gets_400() {
    let (key, log) = (log_key(1), Log::new(ORIGIN, 40, 0));
    let witness = one_log(&key);
    assert_eq!(witness.post(&log.request(0, 30, &key)).await.status, 200);
    let backwards = AddCheckpoint {
        old_size: 30,
        proof: vec![],
        checkpoint: log.checkpoints[10].sign(&key).unwrap(),
    };
    let answer = witness.post(&backwards).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(witness.status(ORIGIN)["size"], 30);
}

/// Sixteen clients race, each pushing its own size the way a log does (on 409, prove from the size the
/// witness names). No answer, and no read of the database, may ever see the state go back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_never_roll_the_state_back() {
    let (key, log) = (Arc::new(log_key(1)), Arc::new(Log::new(ORIGIN, 80, 0)));
    let witness = one_log(&key);
    assert_eq!(witness.post(&log.request(0, 5, &key)).await.status, 200);
    let store = Arc::new(witness.store().await);
    // The largest size acknowledged (a 200 received) so far.
    let acknowledged = Arc::new(AtomicU64::new(5));
    let targets = [9, 45, 13, 61, 20, 33, 70, 6, 52, 27, 80, 38, 15, 57, 24, 64];
    let mut clients = Vec::new();
    for target in targets {
        let (key, log, store, acknowledged) = (key.clone(), log.clone(), store.clone(), acknowledged.clone());
        let (client, base) = (witness.client.clone(), witness.base.clone());
        clients.push(tokio::spawn(async move {
            let mut old = 5;
            loop {
                let floor = acknowledged.load(Ordering::SeqCst);
                let answer = post(&client, &base, log.request(old, target, &key).to_body())
                    .await
                    .unwrap();
                match answer.status {
                    200 => {
                        assert!(target >= floor, "{target} cosigned after {floor} was: a rollback");
                        acknowledged.fetch_max(target, Ordering::SeqCst);
                    }
                    409 => old = answer.latest_size(),
                    _ => panic!("{old} → {target}: {answer:?}"),
                }
                // Everything acknowledged before this read is in the database.
                let floor = acknowledged.load(Ordering::SeqCst);
                let stored = store.state(ORIGIN).await.unwrap().unwrap().size;
                assert!(stored >= floor, "stored {stored} after {floor} was acknowledged");
                if answer.status == 200 || old > target {
                    return;
                }
            }
        }));
    }
    // Meanwhile a reader sees the stored size only grow.
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut last = 0;
            while last < 80 {
                let size = store.state(ORIGIN).await.unwrap().unwrap().size;
                assert!(size >= last, "the stored size went from {last} back to {size}");
                last = size;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    for client in clients {
        client.await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acknowledged.load(Ordering::SeqCst), 80);
    assert_eq!(witness.status(ORIGIN)["size"], 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_witness_keeps_its_state_after_restart() {
    let (key, log) = (Arc::new(log_key(1)), Arc::new(Log::new(ORIGIN, 400, 0)));
    let mut witness = one_log(&key);
    assert_eq!(witness.post(&log.request(0, 1, &key)).await.status, 200);
    // A log pushing one leaf at a time, until the witness dies under it.
    let acknowledged = Arc::new(AtomicU64::new(1));
    let stream = {
        let (key, log, acknowledged) = (key.clone(), log.clone(), acknowledged.clone());
        let (client, base) = (witness.client.clone(), witness.base.clone());
        tokio::spawn(async move {
            for size in 2..400 {
                match post(&client, &base, log.request(size - 1, size, &key).to_body()).await {
                    Ok(answer) => assert_eq!(answer.status, 200, "{answer:?}"),
                    Err(_) => return,
                }
                acknowledged.store(size, Ordering::SeqCst);
            }
            panic!("the witness was not killed");
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.load(Ordering::SeqCst) < 20 {
        assert!(Instant::now() < deadline, "the stream is stuck");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    witness.kill();
    stream.await.unwrap();
    let acknowledged = acknowledged.load(Ordering::SeqCst);

    witness.restart();
    // Its state is what it acknowledged, or one more whose answer the kill cut off.
    let latest = witness.post(&log.request(0, 1, &key)).await.latest_size();
    assert!(
        [acknowledged, acknowledged + 1].contains(&latest),
        "{latest} after {acknowledged}"
    );
    let stale = witness.post(&log.request(latest - 1, latest + 1, &key)).await;
    assert_eq!(stale.latest_size(), latest);
    let next = witness.post(&log.request(latest, latest + 1, &key)).await;
    assert_eq!(next.status, 200, "{next:?}");
    assert_eq!(witness.status(ORIGIN)["size"], latest + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_log_key_is_accepted() {
    let (old_key, new_key) = (log_key(1), log_key(2));
    let log = Log::new(ORIGIN, 40, 0);
    let witness = Witness::start(&[(ORIGIN, vec![vkey(ORIGIN, &old_key), vkey(ORIGIN, &new_key)])]);
    assert_eq!(witness.post(&log.request(0, 10, &old_key)).await.status, 200);
    let request = log.request(10, 20, &new_key);
    let answer = witness.post(&request).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    witness.cosigned_at(&request, &answer.text, &new_key);
    assert_eq!(witness.post(&log.request(20, 30, &log_key(3))).await.status, 403);
    assert_eq!(witness.status(ORIGIN)["size"], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_starts_empty_is_followed_as_it_grows() {
    let (key, log) = (log_key(1), Log::new(ORIGIN, 40, 0));
    let witness = one_log(&key);
    assert_eq!(witness.post(&log.request(0, 0, &key)).await.status, 200);
    // From an empty tree there is nothing to prove: old size 0, no proof (C2SP).
    assert_eq!(witness.post(&log.request(0, 10, &key)).await.status, 200);
    assert_eq!(witness.post(&log.request(10, 20, &key)).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_refuses_to_overwrite_and_serve_validates_its_config() {
    let key = log_key(1);
    let witness = one_log(&key);
    let key_file = witness.dir.path().join("keys/witness.pem");
    let before = std::fs::read(&key_file).unwrap();
    let out = witness.run(&[
        "witness",
        "keygen",
        "--name",
        WITNESS,
        "--key-file",
        key_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read(&key_file).unwrap(), before);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let good = std::fs::read_to_string(&witness.config).unwrap();
    let other = vkey("other.example/log", &key);
    let cases = [
        (good.replace(&vkey(ORIGIN, &key), &other), "is for the origin"),
        (
            format!(
                "{good}\n[[logs]]\norigin = {ORIGIN:?}\nkeys = [{:?}]\n",
                vkey(ORIGIN, &log_key(2))
            ),
            "configured twice",
        ),
        (
            good.replace(WITNESS, "witness example"),
            "not a valid signed-note key name",
        ),
        (format!("{good}\nsurprise = 1\n"), "unknown field"),
    ];
    for (config, error) in cases {
        let path = witness.dir.path().join("bad.toml");
        std::fs::write(&path, &config).unwrap();
        let out = witness.run(&[
            "witness",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            path.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{config}: {stderr}");
        assert!(stderr.contains(error), "{config}: {stderr}");
    }
}

//! The export library against real databases (a SQLite file; PostgreSQL at DOCKETOPS_TEST_POSTGRES_URL,
//! default postgres://postgres@127.0.0.1:5432/postgres, a database per test) and receivers played by the
//! test: a syslog receiver that dies with entries unread, a damaged ledger, a replaced database, and a
//! copy rebuilt into a bundle across a key rotation.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ledger_core::bundle::{BundleHeader, parse_entry_line};
use ledger_core::{Digest, LedgerSigningKey, NewEvent, VerifyOptions};
use siem::{ExportConfig, ExportError, Mode, Sink, SinkOptions, SinkSpec};
use storage::{AppendConfig, Ledger, Store, tamper};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

fn admin_url() -> String {
    std::env::var("DOCKETOPS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A migrated database for one test.
struct TestDb {
    store: Store,
    _dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    async fn new(backend: &str, test: &str) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg_name) = match backend {
            "sqlite" => (format!("sqlite://{}", dir.path().join("ledger.db").display()), None),
            _ => {
                let name = format!("dkt_siem_{test}_{}", std::process::id());
                let url = storage::create_postgres_database(&admin_url(), &name)
                    .await
                    .expect("PostgreSQL must be running for these tests (see README)");
                (url, Some(name))
            }
        };
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        TestDb {
            store,
            _dir: dir,
            pg_name,
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self._dir.path().join(name)
    }

    /// A ledger with `notes` notes after the genesis entry.
    async fn ledger(&self, notes: usize) -> Ledger {
        let ledger = Ledger::start(
            self.store.clone(),
            LedgerSigningKey::generate(),
            AppendConfig::default(),
        );
        ledger.initialize().await.unwrap();
        append(&ledger, notes).await;
        ledger
    }

    async fn finish(self) {
        self.store.close().await;
        if let Some(name) = &self.pg_name {
            storage::drop_postgres_database(&admin_url(), name).await.unwrap();
        }
    }
}

async fn append(ledger: &Ledger, notes: usize) {
    let events = (0..notes)
        .map(|i| {
            NewEvent::new(
                "ledger.note",
                "usr_test",
                serde_json::json!({"n": i, "text": "Grüße ]\""}),
            )
        })
        .collect();
    ledger.append_all(events).await.unwrap();
}

async fn head(store: &Store) -> u64 {
    store.head().await.unwrap().map_or(0, |entry| entry.seq)
}

fn config(name: &str, mode: Mode) -> ExportConfig {
    ExportConfig {
        name: name.to_string(),
        batch: 5,
        mode,
        poll_interval: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        give_up_after: None,
    }
}

async fn file_sink(path: &Path) -> Sink {
    Sink::open(&SinkSpec::File(path.to_path_buf()), &SinkOptions::default())
        .await
        .unwrap()
}

fn seqs_in(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| parse_entry_line(line).ok())
        .map(|entry| entry.seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_only_move_forward_unless_reset() {
    for backend in ["sqlite", "postgres"] {
        let db = TestDb::new(backend, "cursors").await;
        let store = &db.store;
        assert_eq!(store.export_cursor("soc").await.unwrap(), None);
        assert!(store.advance_export_cursor("soc", 5, "evt_5").await.unwrap());
        // A slower exporter under the same name cannot move it back.
        assert!(!store.advance_export_cursor("soc", 3, "evt_3").await.unwrap());
        assert!(!store.advance_export_cursor("soc", 5, "evt_5").await.unwrap());
        assert!(store.advance_export_cursor("soc", 9, "evt_9").await.unwrap());
        let cursor = store.export_cursor("soc").await.unwrap().unwrap();
        assert_eq!((cursor.last_seq, cursor.last_entry_id.as_deref()), (9, Some("evt_9")));
        // An operator's reset moves it anywhere.
        store.set_export_cursor("soc", 2, Some("evt_2")).await.unwrap();
        store.set_export_cursor("archive", 0, None).await.unwrap();
        let all = store.export_cursors().await.unwrap();
        let names: Vec<(&str, i64)> = all.iter().map(|c| (c.name.as_str(), c.last_seq)).collect();
        assert_eq!(names, [("archive", 0), ("soc", 2)], "{backend}");
        db.finish().await;
    }
}

/// Frames read from one connection: `LEN SP MSG`, octet-counted.
async fn read_frame(reader: &mut (impl tokio::io::AsyncBufRead + Unpin)) -> Option<String> {
    let mut length = Vec::new();
    reader.read_until(b' ', &mut length).await.ok()?;
    let length: usize = std::str::from_utf8(length.strip_suffix(b" ")?).ok()?.parse().ok()?;
    let mut message = vec![0u8; length];
    reader.read_exact(&mut message).await.ok()?;
    String::from_utf8(message).ok()
}

fn seq_of(message: &str) -> u64 {
    let json = &message[message.find("] {").unwrap() + 2..];
    parse_entry_line(json).unwrap().seq
}

/// A receiver that processes 8 messages of its first connection and then dies with the rest unread (as
/// a receiver that crashes with data in its socket buffer): a write that "succeeded" is no delivery. The
/// entries it never processed must come again on the next connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_resends_what_a_dying_receiver_never_processed() {
    let db = TestDb::new("sqlite", "syslog").await;
    let _ledger = db.ledger(40).await;
    let total = head(&db.store).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (processed_tx, mut processed) = tokio::sync::mpsc::unbounded_channel::<(usize, u64)>();
    tokio::spawn(async move {
        for connection in 0.. {
            let (socket, _) = listener.accept().await.unwrap();
            let mut reader = BufReader::new(socket);
            let mut count = 0;
            while let Some(message) = read_frame(&mut reader).await {
                assert!(message.starts_with("<110>1 "), "{message}");
                processed_tx.send((connection, seq_of(&message))).unwrap();
                count += 1;
                if connection == 0 && count == 8 {
                    // Let the exporter write more, then die without reading it.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    break;
                }
            }
        }
    });

    let spec: SinkSpec = format!("syslog://127.0.0.1:{port}").parse().unwrap();
    let options = SinkOptions {
        settle: Duration::from_secs(1),
        ..SinkOptions::default()
    };
    let mut sink = Sink::open(&spec, &options).await.unwrap();
    let report = siem::run_export(&db.store, &mut sink, &config("soc", Mode::Once), std::future::pending())
        .await
        .unwrap();
    assert_eq!(report.position, total);
    assert!(report.retries >= 1);

    let mut by_connection: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    while let Ok(Some((connection, seq))) = tokio::time::timeout(Duration::from_millis(200), processed.recv()).await {
        by_connection.entry(connection).or_default().push(seq);
    }
    assert_eq!(by_connection[&0], (1..=8).collect::<Vec<_>>());
    let mut all: Vec<u64> = by_connection.values().flatten().copied().collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all,
        (1..=total).collect::<Vec<_>>(),
        "every entry processed at least once"
    );
    // The resend starts at the position (nothing had settled), so the second connection has everything.
    assert_eq!(by_connection[&1], (1..=total).collect::<Vec<_>>());
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_the_ledger_stops_the_export_before_it() {
    let db = TestDb::new("sqlite", "gap").await;
    let _ledger = db.ledger(10).await;
    tamper::delete(&db.store, 6).await.unwrap();
    let out = db.path("out.jsonl");
    let mut sink = file_sink(&out).await;
    let mut config = config("gap", Mode::Once);
    config.give_up_after = Some(Duration::from_millis(500));
    let error = siem::run_export(&db.store, &mut sink, &config, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ExportError::GaveUp { last, .. } if last.contains("seq 6 is missing")),
        "{error}"
    );
    assert_eq!(seqs_in(&out), [1, 2, 3, 4, 5]);
    assert_eq!(db.store.export_cursor("gap").await.unwrap().unwrap().last_seq, 5);
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_ledger_is_noticed_instead_of_skipped() {
    let db = TestDb::new("sqlite", "replaced").await;
    let _ledger = db.ledger(10).await;
    // The position names an entry this ledger does not have at that seq (a database restored from
    // another ledger, say).
    db.store.set_export_cursor("soc", 7, Some("evt_other")).await.unwrap();
    let mut sink = file_sink(&db.path("out.jsonl")).await;
    let error = siem::run_export(&db.store, &mut sink, &config("soc", Mode::Once), std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(error, ExportError::CursorMismatch { seq: 7, .. }), "{error}");
    assert!(error.to_string().contains("docketops siem reset"));
    // Past the head is no better.
    db.store.set_export_cursor("soc", 99, Some("evt_x")).await.unwrap();
    let error = siem::run_export(&db.store, &mut sink, &config("soc", Mode::Once), std::future::pending())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ExportError::CursorMismatch {
                seq: 99,
                found: None,
                ..
            }
        ),
        "{error}"
    );
    db.finish().await;
}

/// Follow mode on PostgreSQL while the ledger grows and its key rotates; the copy, shuffled and with
/// duplicates and noise, rebuilds into a bundle the core verifier accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_copy_rebuilds_into_a_verifiable_bundle_across_a_rotation() {
    let db = TestDb::new("postgres", "follow").await;
    let ledger = db.ledger(12).await;
    let out = db.path("copy.jsonl");
    let mut sink = file_sink(&out).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let store = db.store.clone();
    let exporter = tokio::spawn(async move {
        let stopped = async {
            let _ = stopped.await;
        };
        siem::run_export(&store, &mut sink, &config("follow", Mode::Follow), stopped).await
    });
    append(&ledger, 7).await;
    let new_key = LedgerSigningKey::generate();
    ledger.rotate(new_key, "usr_admin").await.unwrap();
    append(&ledger, 9).await;
    let total = head(&db.store).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seqs_in(&out).len() < total as usize {
        assert!(tokio::time::Instant::now() < deadline, "the follower did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    let report = exporter.await.unwrap().unwrap();
    assert_eq!(report.position, total);
    assert_eq!(seqs_in(&out), (1..=total).collect::<Vec<_>>());

    // The SIEM's view: lines reversed, some twice, some wrapped in syslog headers, noise in between,
    // spread over two files.
    let lines: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let (mut first, mut second) = (String::new(), String::new());
    for (i, line) in lines.iter().enumerate().rev() {
        let target = if i % 2 == 0 { &mut first } else { &mut second };
        if i % 3 == 0 {
            target.push_str(&format!(
                "<110>1 - gw docketops - ledger.note [docketops@32473 seq=\"{}\"] {line}\n",
                i + 1
            ));
            target.push_str("Nov 27 06:00:00 gw other-program: unrelated {\"json\": true}\n");
        } else {
            target.push_str(&format!("{line}\n"));
        }
        if i % 5 == 0 {
            second.push_str(&format!("{line}\n"));
        }
    }
    let (first_path, second_path) = (db.path("siem-1.log"), db.path("siem-2.log"));
    std::fs::write(&first_path, first).unwrap();
    std::fs::write(&second_path, second).unwrap();
    let bundle_path = db.path("bundle.jsonl");
    let summary = siem::bundle::build_bundle_file(&[first_path.clone(), second_path.clone()], &bundle_path).unwrap();
    assert_eq!(summary.entries, total);
    assert!(summary.duplicates > 0 && summary.skipped_lines > 0);

    let bundle = std::fs::read_to_string(&bundle_path).unwrap();
    let mut bundle_lines = bundle.lines();
    let header = BundleHeader::parse(bundle_lines.next().unwrap()).unwrap();
    assert_eq!(header.keys.len(), 2, "the genesis key and the rotated-to key");
    let entries: Vec<_> = bundle_lines.map(|line| parse_entry_line(line).unwrap()).collect();
    let bundle_head = header.head.unwrap();
    let report = ledger_core::verify::verify_entries(
        &entries,
        VerifyOptions {
            expected_head: Some((bundle_head.seq, bundle_head.chain_hash)),
            ..VerifyOptions::default()
        },
    );
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries_checked, total);
    let stored_head: Digest = db.store.head().await.unwrap().unwrap().chain_hash.parse().unwrap();
    assert_eq!(bundle_head.chain_hash, stored_head);

    // A copy that lost an entry, or holds an altered one next to the original, is refused.
    let without: String = lines
        .iter()
        .filter(|l| !l.starts_with("{\"seq\":3,"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&first_path, without).unwrap();
    let error = siem::bundle::build_bundle_file(std::slice::from_ref(&first_path), &bundle_path).unwrap_err();
    assert!(
        error.is_invalid_copy() && error.to_string().contains("(seq 3)"),
        "{error}"
    );
    let altered = lines[4].replace("\"usr_test\"", "\"usr_mallory\"");
    std::fs::write(&second_path, format!("{altered}\n")).unwrap();
    std::fs::write(&first_path, lines.join("\n")).unwrap();
    let error = siem::bundle::build_bundle_file(&[first_path, second_path], &bundle_path).unwrap_err();
    assert!(error.to_string().contains("at seq 5"), "{error}");
    db.finish().await;
}

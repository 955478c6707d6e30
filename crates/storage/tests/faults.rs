//! Storage faults on a real SQLite file: a full disk (a small tmpfs filled up, then freed) and a read-only
//! directory (a tmpfs remounted read-only). Mounting needs root; without it the tests skip and say so.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ledger_core::{LedgerSigningKey, NewEvent, VerifyOptions};
use serde_json::json;
use storage::{ApiKeyRow, AppendConfig, AppendError, IdentityRow, Ledger, StorageError, Store, WriteFault};

/// A tmpfs mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED: cannot mount a tmpfs (these tests need root)");
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A read-only bind mount of a directory, unmounted when dropped. Root ignores permission bits; a
/// read-only mount holds for root too.
struct ReadOnlyView {
    dir: tempfile::TempDir,
}

impl ReadOnlyView {
    fn of(source: &Path) -> Option<ReadOnlyView> {
        let dir = tempfile::tempdir().unwrap();
        let bound = Command::new("mount").arg("--bind").arg(source).arg(dir.path()).status();
        if !bound.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED: cannot bind-mount a directory (these tests need root)");
            return None;
        }
        let view = ReadOnlyView { dir };
        let ro = Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(view.path())
            .status();
        assert!(
            ro.is_ok_and(|s| s.success()),
            "remounting the bind mount read-only failed"
        );
        Some(view)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ReadOnlyView {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: after a failed assertion, connections may still hold files open while they close.
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Writes zeros to `path` until the file system is full.
fn fill(path: &Path) -> PathBuf {
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    // The last partial block: byte by byte until nothing fits.
    while file.write_all(&[0]).is_ok() {}
    let _ = file.sync_all();
    path.to_path_buf()
}

fn note(i: usize) -> NewEvent {
    // Incompressible text, so every entry takes its own pages.
    let text: String = (0..2000)
        .map(|j| char::from(b'a' + ((i * 7 + j * 13) % 26) as u8))
        .collect();
    NewEvent::new("ledger.note", "tester", json!({"n": i, "text": text}))
}

fn is_full(error: &AppendError) -> bool {
    matches!(error, AppendError::Storage(e) if matches!(**e, StorageError::Full(_)))
}

fn identity(i: usize) -> (IdentityRow, ApiKeyRow) {
    let at = "2026-01-01T00:00:00Z".to_string();
    let identity = IdentityRow {
        id: format!("agt_{i}"),
        name: format!("agent-{i}"),
        kind: "agent".into(),
        roles: r#"["operator"]"#.into(),
        scopes: "[]".into(),
        status: "active".into(),
        created_at: at.clone(),
        created_by: "tester".into(),
        updated_at: at.clone(),
        member_of: "[]".into(),
        recorded_entry: None,
    };
    let key = ApiKeyRow {
        id: format!("key_{i}"),
        identity_id: identity.id.clone(),
        digest: format!("{i:064}"),
        status: domain::KeyStatus::Active,
        created_at: at,
        revoked_at: None,
        recorded_entry: None,
        issued_by: Some("tester".into()),
    };
    (identity, key)
}

async fn open(dir: &Path) -> (Store, Ledger) {
    let store = Store::connect(&format!("sqlite://{}", dir.join("ledger.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let ledger = Ledger::start(store.clone(), LedgerSigningKey::generate(), AppendConfig::default());
    ledger.initialize().await.unwrap();
    (store, ledger)
}

/// Appends small entries one at a time until one fails; returns how many were acknowledged and the
/// error. A small transaction fails at COMMIT, where SQLite rolls back by itself: the case that used to
/// leave pooled connections inside a transaction (sqlx's depth counter still at 1).
async fn append_until_failure(ledger: &Ledger, from: usize) -> (usize, AppendError) {
    for i in from..from + 100_000 {
        if let Err(error) = ledger.append(note(i)).await {
            return (i - from, error);
        }
    }
    panic!("100,000 appends on an 8 MiB file system did not fill it");
}

#[tokio::test]
async fn a_full_disk_fails_appends_as_full_and_they_work_again_once_space_returns() {
    let Some(fs) = Tmpfs::mount("8m") else { return };
    let (store, ledger) = open(fs.path()).await;
    // Leave about 1 MiB for the database, so some appends succeed before the disk is full.
    let filler = fill(&fs.path().join("filler"));
    let len = std::fs::metadata(&filler).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len - (1 << 20))
        .unwrap();

    let (mut acknowledged, error) = append_until_failure(&ledger, 0).await;
    eprintln!("{acknowledged} appends acknowledged, then: {error}");
    assert!(is_full(&error), "expected a full disk, got {error:?}");
    // Fill what the log's space left behind; from now on writes fail, whatever their size (one that
    // still fits is acknowledged and counted).
    let rest = fill(&fs.path().join("rest"));
    let mut failures = 0;
    for i in 0..8 {
        match ledger.append(note(acknowledged)).await {
            Ok(_) => acknowledged += 1,
            Err(error) => {
                assert!(is_full(&error), "expected a full disk, got {error:?}");
                failures += 1;
            }
        }
        let (identity, key) = identity(i);
        match store.insert_identity(&identity, &key).await {
            Ok(()) => {}
            Err(error) => assert!(
                matches!(error, StorageError::Full(_)),
                "expected a full disk, got {error:?}"
            ),
        }
    }
    assert!(failures >= 6, "only {failures} of 8 appends failed on a full disk");
    assert!(
        matches!(store.write_fault().await, Some((WriteFault::Full, _))),
        "the store reports no full disk"
    );
    // Reads keep working while full.
    assert_eq!(store.entry_count().await.unwrap(), 1 + acknowledged as u64);

    std::fs::remove_file(filler).unwrap();
    std::fs::remove_file(rest).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let recovered = loop {
        match ledger.append(note(acknowledged)).await {
            Ok(entry) => break entry,
            Err(error) if Instant::now() < deadline => {
                eprintln!("not yet: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("appends still fail 5 s after space returned: {error}"),
        }
    };
    assert_eq!(
        recovered.seq,
        2 + acknowledged as u64,
        "an acknowledged entry is missing"
    );
    assert!(
        store.write_fault().await.is_none(),
        "the write fault outlived a successful write"
    );
    // Directory transactions (BEGIN, not BEGIN IMMEDIATE) work on every pooled connection too.
    for i in 100..108 {
        let (identity, key) = identity(i);
        store.insert_identity(&identity, &key).await.unwrap();
    }
    let report = storage::verify_ledger(&store, VerifyOptions::default(), |_| {})
        .await
        .unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries_checked, 2 + acknowledged as u64);
    store.close().await;
}

#[tokio::test]
async fn a_ledger_in_a_read_only_directory_verifies_through_a_read_only_connection() {
    let source = tempfile::tempdir().unwrap();
    let (store, ledger) = open(source.path()).await;
    ledger.append_all((0..20).map(note).collect()).await.unwrap();
    drop(ledger);
    store.close().await;
    // The database file alone, with every committed entry checkpointed into it: what an auditor gets as a
    // copy. (Waiting for the last connection's close to remove the log was flaky: a pooled connection's
    // thread may outlive `close`.)
    let url = format!("sqlite://{}", source.path().join("ledger.db").display());
    let checkpointing = Store::connect(&url).await.unwrap();
    checkpointing.checkpoint().await.unwrap();
    checkpointing.close().await;
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(source.path().join("ledger.db"), copy.path().join("ledger.db")).unwrap();
    let source = copy;
    let Some(view) = ReadOnlyView::of(source.path()) else {
        return;
    };
    let url = format!("sqlite://{}", view.path().join("ledger.db").display());

    let store = Store::connect_read_only(&url)
        .await
        .expect("a read-only ledger opens for reading");
    let report = storage::verify_ledger(&store, VerifyOptions::default(), |_| {})
        .await
        .unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries_checked, 21);
    let refused = store.insert_setting_if_absent("x", "y").await.unwrap_err();
    assert!(
        matches!(refused, StorageError::ReadOnly(_)),
        "expected read-only, got {refused:?}"
    );
    store.close().await;
    let listing: Vec<_> = std::fs::read_dir(source.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(listing, ["ledger.db"], "reading wrote files");

    // A writable store cannot work here; what it reports is for `serve` to explain (see the CLI tests).
    let writable = async {
        let store = Store::connect(&url).await?;
        store.insert_setting_if_absent("x", "y").await
    };
    let error = writable.await.expect_err("a write on a read-only mount");
    eprintln!("read-write open: {error}");
}

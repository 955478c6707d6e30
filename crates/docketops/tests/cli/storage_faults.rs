//! Storage faults against the real gateway binary on SQLite: a data directory on a small tmpfs that fills
//! up (507 `storage_full`, `/readyz` 503, reads still served) and is freed again (writes work again
//! without a restart, nothing acknowledged is lost, the ledger verifies), and a read-only data directory
//! (`verify` and `export` work, `serve` refuses with a message naming the directory). Mounting needs
//! root; without it the tests skip and say so.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Server, TestApp, stdout, verify_json};

/// A mount on `dir` (a tmpfs, or a read-only bind), lazily unmounted when dropped.
struct Mount {
    dir: PathBuf,
}

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Option<Mount> {
        let options = format!("size={size}");
        Self::attach(dir, &["-t", "tmpfs", "-o", &options, "tmpfs"], "a tmpfs")
    }

    /// `source` seen read-only at `dir`: a read-only mount holds for root, permission bits do not.
    fn read_only_view(source: &Path, dir: &Path) -> Option<Mount> {
        let mount = Self::attach(dir, &["--bind", &source.display().to_string()], "a bind mount")?;
        let ro = Command::new("mount").args(["-o", "remount,bind,ro"]).arg(dir).status();
        assert!(
            ro.is_ok_and(|s| s.success()),
            "remounting the bind mount read-only failed"
        );
        Some(mount)
    }

    fn attach(dir: &Path, args: &[&str], what: &str) -> Option<Mount> {
        std::fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount").args(args).arg(dir).status();
        if !mounted.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED: cannot mount {what} (these tests need root)");
            return None;
        }
        Some(Mount { dir: dir.to_path_buf() })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Writes zeros to `path` until the file system is full; `leave` bytes are given back.
fn fill(path: &Path, leave: u64) -> PathBuf {
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    while file.write_all(&[0]).is_ok() {}
    let len = file.metadata().unwrap().len();
    file.set_len(len.saturating_sub(leave)).unwrap();
    path.to_path_buf()
}

async fn create_identity(server: &Server, name: &str) -> (u16, Value) {
    let body = json!({"name": name, "kind": "agent", "roles": ["operator"],
        "scopes": [{"namespaces": ["staging"], "access": "read", "kinds": ["*"]}]});
    server
        .post("/api/v1/identities", &server.admin_key, &body.to_string())
        .await
}

/// Creates identities until one is refused; returns the ids of those created and the refusal.
async fn create_until_refused(server: &Server, created: &mut Vec<String>) -> (u16, Value) {
    for i in 0..5_000 {
        let (status, answer) = create_identity(server, &format!("agent-{}-{i}", created.len())).await;
        if status != 201 {
            return (status, answer);
        }
        created.push(answer["identity"]["id"].as_str().unwrap().to_owned());
    }
    panic!("5,000 identities did not fill an 8 MiB data directory");
}

fn assert_storage_full(status: u16, answer: &Value) {
    assert_eq!(status, 507, "{answer}");
    assert_eq!(answer["error"]["code"], "storage_full", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("disk is full"), "{message}");
}

#[tokio::test]
async fn a_full_disk_answers_507_and_writes_work_again_once_space_returns() {
    let app = TestApp::new("sqlite", "full_disk").await;
    let Some(_tmpfs) = Mount::tmpfs(&app.data_dir(), "8m") else {
        return;
    };
    let server = Server::start(&app);
    let mut created = Vec::new();
    let filler = fill(&app.data_dir().join("filler"), 256 * 1024);

    let (status, answer) = create_until_refused(&server, &mut created).await;
    assert_storage_full(status, &answer);
    assert!(!created.is_empty(), "nothing was written before the disk was full");
    eprintln!("{} identities created, then {status}: {answer}", created.len());
    // Whatever the log's space still takes, fill it: from here on every write is refused.
    let rest = fill(&app.data_dir().join("rest"), 0);
    let (status, answer) = create_until_refused(&server, &mut created).await;
    assert_storage_full(status, &answer);
    let (status, ready) = server.get("/readyz", None).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["error"]["code"], "storage_full", "{ready}");
    // Reads keep working while full.
    let (status, listed) = server.admin_get("/api/v1/identities").await;
    assert_eq!(status, 200, "{listed}");

    std::fs::remove_file(filler).unwrap();
    std::fs::remove_file(rest).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    // The two refusals above, and each refused retry below.
    let mut refused = 2u64;
    loop {
        let (status, answer) = create_identity(&server, "after-the-disk-was-freed").await;
        if status == 201 {
            created.push(answer["identity"]["id"].as_str().unwrap().to_owned());
            break;
        }
        refused += 1;
        assert!(
            Instant::now() < deadline,
            "writes still fail 5 s after space returned: {status} {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, ready) = server.get("/readyz", None).await;
    assert_eq!(status, 200, "{ready}");
    for id in &created {
        let (status, identity) = server.admin_get(&format!("/api/v1/identities/{id}")).await;
        assert_eq!(status, 200, "acknowledged identity {id} is gone: {identity}");
    }
    drop(server);
    let (code, report) = verify_json(&app, &[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["valid"], true, "{report}");
    // Genesis, the bootstrap admin, and one entry per identity created; a refused creation may have its entry
    // too, when the disk filled between its commit and the row's update that follows (known gap: it is answered
    // 507 although its `identity.created` is in the ledger; the identity never authenticates).
    let entries = report["entries_checked"].as_u64().unwrap();
    let acknowledged = 2 + created.len() as u64;
    assert!(
        (acknowledged..=acknowledged + refused).contains(&entries),
        "{entries} entries: {report}"
    );
}

#[tokio::test]
async fn a_read_only_data_directory_is_verified_and_exported_but_not_served() {
    let app = TestApp::new("sqlite", "read_only").await;
    let server = Server::start(&app);
    let (status, answer) = create_identity(&server, "before-read-only").await;
    assert_eq!(status, 201, "{answer}");
    stop(server);
    let view_dir = app.dir.path().join("read-only-view");
    let Some(_view) = Mount::read_only_view(&app.data_dir(), &view_dir) else {
        return;
    };
    let url = format!("sqlite://{}", view_dir.join("ledger.db").display());
    let on_view = |args: &[&str]| {
        app.command()
            .env("DOCKETOPS_DATA_DIR", &view_dir)
            .env("DOCKETOPS_DATABASE_URL", &url)
            .args(args)
            .output()
            .unwrap()
    };

    let verified = on_view(&["verify", "--json"]);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let report: Value = serde_json::from_str(&stdout(&verified)).unwrap();
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["entries_checked"], 3, "{report}");
    let bundle = app.dir.path().join("bundle.jsonl");
    let exported = on_view(&["export", "--quiet", "--out", &bundle.display().to_string()]);
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let offline = app.run(&["verify", "--bundle", &bundle.display().to_string()]);
    assert!(offline.status.success(), "{}", String::from_utf8_lossy(&offline.stderr));
    let listing: Vec<_> = std::fs::read_dir(app.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        listing.iter().all(|name| !name.to_string_lossy().contains("-wal")),
        "verify or export wrote a write-ahead log: {listing:?}"
    );

    let served = on_view(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!served.status.success(), "serve started on a read-only data directory");
    let stderr = String::from_utf8_lossy(&served.stderr);
    eprintln!("serve on a read-only directory: {stderr}");
    assert!(
        stderr.contains("read-only") && stderr.contains(&view_dir.display().to_string()),
        "serve's error does not name the read-only directory: {stderr}"
    );
}

/// Stops a gateway with SIGTERM, so it closes its database (checkpointing and removing the -wal file).
fn stop(mut server: Server) {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the gateway did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

//! `docketops siem`: the ledger streamed to a real rsyslog (Debian's, started by the test with a private
//! configuration and work directory) over TCP and TLS, to a JSON-lines file and stdout, and to an
//! HTTP Event Collector played by the test. The receiver is killed and restarted mid-stream, the exporter
//! killed and restarted; every entry must arrive, and the received copy must verify.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{BIN, TestApp, stdout};

/// Installs rsyslog (and its TLS driver) once per test run when missing: scripts/ensure-rsyslog.
fn ensure_rsyslog() -> PathBuf {
    static RSYSLOGD: OnceLock<PathBuf> = OnceLock::new();
    RSYSLOGD
        .get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-rsyslog");
            let status = Command::new(&script).status().expect("scripts/ensure-rsyslog runs");
            assert!(
                status.success(),
                "scripts/ensure-rsyslog failed: rsyslog is needed for these tests"
            );
            ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
                .iter()
                .map(PathBuf::from)
                .find(|path| path.exists())
                .expect("rsyslogd is installed")
        })
        .clone()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An rsyslogd of the test's own: its config, work directory, pid file and output in `dir`. The imtcp
/// input (octet-counted framing) feeds two files: the message (MSG, the entry's JSON) one per line, and
/// what rsyslog parsed of the RFC 5424 header.
struct Rsyslog {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Rsyslog {
    /// `tls`: the receiver's certificate and key; with `client_auth` it also requires a client
    /// certificate that its CA file (the same certificate) validates.
    fn start(dir: &Path, tls: Option<(&Path, &Path)>, client_auth: bool) -> Rsyslog {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(dir.join("work")).unwrap();
        let port = free_port();
        let driver = match tls {
            Some((cert, key)) => format!(
                " streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"{}\" \
                 streamDriver.CAFile=\"{}\" streamDriver.CertFile=\"{}\" streamDriver.KeyFile=\"{}\"",
                if client_auth { "x509/certvalid" } else { "anon" },
                cert.display(),
                cert.display(),
                key.display()
            ),
            None => String::new(),
        };
        let config = format!(
            r#"global(workDirectory="{work}" maxMessageSize="2m")
module(load="imtcp")
template(name="message" type="string" string="%msg%\n")
template(name="header" type="string" string="%app-name% %msgid% %hostname% %pri% %structured-data%\n")
ruleset(name="siem") {{
  action(type="omfile" file="{received}" template="message")
  action(type="omfile" file="{header}" template="header")
}}
input(type="imtcp" port="{port}" ruleset="siem"{driver})
"#,
            work = dir.join("work").display(),
            received = dir.join("received.log").display(),
            header = dir.join("header.log").display(),
        );
        std::fs::write(dir.join("rsyslog.conf"), config).unwrap();
        let mut rsyslog = Rsyslog { dir, port, child: None };
        rsyslog.restart();
        rsyslog
    }

    /// Starts rsyslogd (again) on the same port, appending to the same files.
    fn restart(&mut self) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("rsyslogd.log"))
            .unwrap();
        let child = Command::new(ensure_rsyslog())
            .arg("-n")
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not listen: {}",
                self.rsyslogd_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: whatever rsyslogd had not written is lost.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.dir.join("rsyslogd.pid"));
    }

    fn received(&self) -> PathBuf {
        self.dir.join("received.log")
    }

    fn rsyslogd_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rsyslogd.log")).unwrap_or_default()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Each received entry's seq and id, in arrival order (lines still being written are skipped).
fn received_entries(path: &Path) -> Vec<(u64, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .filter_map(|entry| Some((entry["seq"].as_u64()?, entry["id"].as_str()?.to_string())))
        .collect()
}

/// How often each seq arrived.
fn arrivals(path: &Path) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for (seq, _) in received_entries(path) {
        *counts.entry(seq).or_insert(0) += 1;
    }
    counts
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn head_seq(app: &TestApp) -> u64 {
    status(app)["head_seq"].as_u64().unwrap()
}

fn status(app: &TestApp) -> Value {
    let out = app.run(&["siem", "status", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// The position of export `name` (0 when it has none yet).
fn position(app: &TestApp, name: &str) -> u64 {
    status(app)["exports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|export| export["name"] == name)
        .map_or(0, |export| export["last_seq"].as_u64().unwrap())
}

/// `siem bundle` over `copies`, then `verify --bundle`: the number of entries the verifier checked.
fn bundle_and_verify(app: &TestApp, copies: &[&Path]) -> u64 {
    let bundle = app.dir.path().join("from-siem.jsonl");
    let mut args = vec!["siem".to_string(), "bundle".to_string()];
    for copy in copies {
        args.extend(["--from".to_string(), copy.display().to_string()]);
    }
    args.extend(["--out".to_string(), bundle.display().to_string()]);
    let out = app.command().args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "siem bundle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The offline verifier needs nothing but the file.
    let out = Command::new(BIN)
        .env_clear()
        .args(["verify", "--json", "--bundle"])
        .arg(&bundle)
        .output()
        .unwrap();
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["valid"], true);
    report["entries_checked"].as_u64().unwrap()
}

fn exporter(app: &TestApp, args: &[&str], log: &Path) -> Command {
    let mut command = app.command();
    command
        .args(["siem", "run"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    command
}

fn note(app: &TestApp, payload: &str) {
    let out = app.run(&["ledger", "append", "--payload", payload]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_export_survives_a_receiver_restart_and_the_copy_verifies() {
    let app = TestApp::new("sqlite", "siem_syslog").await;
    app.append(20);
    // A large entry (rsyslog's default message limit is 8 KiB) with text outside ASCII and characters
    // that syslog's structured data must escape.
    let big = serde_json::json!({"text": "Grüße, 世界 😀 ] \" \\", "filler": "x".repeat(60_000)});
    note(&app, &big.to_string());
    let rsyslog_dir = app.dir.path().join("rsyslog");
    let mut rsyslog = Rsyslog::start(&rsyslog_dir, None, false);
    let sink = format!("syslog://127.0.0.1:{}", rsyslog.port);
    let follow_args = [
        "--sink",
        &sink,
        "--name",
        "soc",
        "--batch",
        "7",
        "--settle",
        "2",
        "--poll-interval",
        "0.2",
        "--max-backoff",
        "1",
        "--hostname",
        "gw-test",
    ];
    let log = app.dir.path().join("exporter.log");
    let mut exporter_process = exporter(&app, &follow_args, &log).spawn().unwrap();

    // Everything so far arrives, and the position moves to the head once it settled.
    let first_head = head_seq(&app);
    wait_until("the first entries arrived and settled", Duration::from_secs(60), || {
        position(&app, "soc") == first_head
    });
    let counts = arrivals(&rsyslog.received());
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (1..=first_head).collect::<Vec<_>>()
    );
    // rsyslog parsed the RFC 5424 header and structured data.
    let headers = std::fs::read_to_string(rsyslog_dir.join("header.log")).unwrap();
    let first_id = &received_entries(&rsyslog.received())[0].1;
    assert!(
        headers.starts_with(&format!(
            "docketops ledger.initialized gw-test 110 [docketops@32473 seq=\"1\" id=\"{first_id}\"]"
        )),
        "{headers}"
    );

    // More entries, and the receiver killed as soon as they start arriving, before they settle (batches of
    // 7, each counted as delivered 2 s after it was written); then more entries while it is down.
    app.append(30);
    wait_until("the next entries started arriving", Duration::from_secs(30), || {
        arrivals(&rsyslog.received()).keys().any(|seq| *seq > first_head)
    });
    rsyslog.kill();
    app.append(30);
    std::thread::sleep(Duration::from_millis(1500));
    rsyslog.restart();
    let head = head_seq(&app);
    wait_until("every entry arrived after the restart", Duration::from_secs(90), || {
        position(&app, "soc") == head
    });
    let counts = arrivals(&rsyslog.received());
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        (1..=head).collect::<Vec<_>>(),
        "every seq arrived, no gap"
    );
    let duplicates: usize = counts.values().map(|n| n - 1).sum();
    // Only what was sent after the last acknowledgement before the kill can come twice: never an entry
    // that had settled before it.
    assert!(
        counts.range(..=first_head).all(|(_, n)| *n == 1),
        "resent from the position, not from the start"
    );
    assert!(
        (1..=60).contains(&duplicates),
        "{duplicates} duplicates: what had not settled is sent again, nothing else"
    );
    let exporter_log = std::fs::read_to_string(&log).unwrap();
    assert!(
        exporter_log.contains("delivery failed"),
        "retries are logged: {exporter_log}"
    );
    eprintln!("syslog: {head} entries, {duplicates} delivered twice across the receiver's restart");

    assert_eq!(bundle_and_verify(&app, &[&rsyslog.received()]), head);

    // The exporter killed outright, entries appended, a new exporter resumes from the position: only the
    // new entries are sent.
    exporter_process.kill().unwrap();
    exporter_process.wait().unwrap();
    let lines_before = received_entries(&rsyslog.received()).len();
    app.append(10);
    let mut once_args = follow_args.to_vec();
    once_args.push("--once");
    let resumed = exporter(&app, &once_args, &app.dir.path().join("resumed.log"))
        .status()
        .unwrap();
    assert!(resumed.success());
    let final_head = head_seq(&app);
    assert_eq!(position(&app, "soc"), final_head);
    wait_until("the resumed entries arrived", Duration::from_secs(30), || {
        received_entries(&rsyslog.received()).len() >= lines_before + 10
    });
    std::thread::sleep(Duration::from_millis(300));
    let new: Vec<u64> = received_entries(&rsyslog.received())[lines_before..]
        .iter()
        .map(|(seq, _)| *seq)
        .collect();
    assert_eq!(new, (head + 1..=final_head).collect::<Vec<_>>(), "nothing sent twice");
    assert_eq!(bundle_and_verify(&app, &[&rsyslog.received()]), final_head);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_tls_checks_certificates_both_ways() {
    let app = TestApp::new("sqlite", "siem_tls").await;
    app.append(25);
    let (cert, key) = super::self_signed_certificate(app.dir.path());
    let rsyslog = Rsyslog::start(&app.dir.path().join("rsyslog-tls"), Some((&cert, &key)), false);
    let sink = format!("syslog+tls://127.0.0.1:{}", rsyslog.port);
    let common = ["--sink", &sink, "--name", "tls", "--once", "--settle", "0.5"];

    // Without the CA file the built-in roots do not know the receiver: no entry goes out, and the export
    // ends when told to give up.
    let out = exporter(&app, &common, &app.dir.path().join("untrusted.log"))
        .args(["--give-up-after", "1", "--max-backoff", "0.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let log = std::fs::read_to_string(app.dir.path().join("untrusted.log")).unwrap();
    assert!(
        log.contains("gave up") && log.to_lowercase().contains("certificate"),
        "{log}"
    );
    assert_eq!(position(&app, "tls"), 0);

    let ca = cert.display().to_string();
    let out = exporter(&app, &common, &app.dir.path().join("tls.log"))
        .args(["--ca", &ca])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        std::fs::read_to_string(app.dir.path().join("tls.log")).unwrap()
    );
    let head = head_seq(&app);
    assert_eq!(position(&app, "tls"), head);
    wait_until("the entries arrived over TLS", Duration::from_secs(30), || {
        arrivals(&rsyslog.received()).len() as u64 == head
    });
    assert_eq!(bundle_and_verify(&app, &[&rsyslog.received()]), head);

    // A receiver that authenticates senders: refused without a client certificate, served with one.
    let mutual = Rsyslog::start(&app.dir.path().join("rsyslog-mtls"), Some((&cert, &key)), true);
    let sink = format!("syslog+tls://127.0.0.1:{}", mutual.port);
    let mutual_args = [
        "--sink", &sink, "--name", "mtls", "--once", "--settle", "0.5", "--ca", &ca,
    ];
    let out = exporter(&app, &mutual_args, &app.dir.path().join("anonymous.log"))
        .args(["--give-up-after", "1", "--max-backoff", "0.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(position(&app, "mtls"), 0);
    let out = exporter(&app, &mutual_args, &app.dir.path().join("mtls.log"))
        .args([
            "--client-cert",
            cert.to_str().unwrap(),
            "--client-key",
            key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        std::fs::read_to_string(app.dir.path().join("mtls.log")).unwrap()
    );
    assert_eq!(position(&app, "mtls"), head);
    wait_until("the entries arrived over mutual TLS", Duration::from_secs(30), || {
        arrivals(&mutual.received()).len() as u64 == head
    });
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_to_a_file_resume_and_verify_on_both_backends() {
    for backend in ["sqlite", "postgres"] {
        let app = TestApp::new(backend, "siem_file").await;
        app.append(10);
        let file = app.dir.path().join("siem.jsonl");
        let sink = format!("file:{}", file.display());
        let run = |name: &str| {
            let out = app.run(&["siem", "run", "--sink", &sink, "--name", name, "--once", "--batch", "3"]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        };
        run("files");
        let head = head_seq(&app);
        let seqs = |path: &Path| received_entries(path).into_iter().map(|(s, _)| s).collect::<Vec<_>>();
        assert_eq!(seqs(&file), (1..=head).collect::<Vec<_>>());
        // Each line is the entry exactly as an export bundle holds it.
        let export = app.dir.path().join("export.jsonl");
        let out = app.run(&["export", "--quiet", "--out", export.to_str().unwrap()]);
        assert!(out.status.success());
        let exported = std::fs::read_to_string(&export).unwrap();
        let exported_entries: Vec<&str> = exported.lines().skip(1).collect();
        let written = std::fs::read_to_string(&file).unwrap();
        assert_eq!(written.lines().collect::<Vec<_>>(), exported_entries);

        // A second run sends only what is new.
        app.append(5);
        run("files");
        let head = head_seq(&app);
        assert_eq!(seqs(&file), (1..=head).collect::<Vec<_>>(), "resumed without resending");
        let status = status(&app);
        assert_eq!(status["exports"][0]["name"], "files");
        assert_eq!(status["exports"][0]["behind"], 0);

        // A crash in the middle of a line leaves a cut line: the next run starts on a line of its own.
        let mut cut = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        std::io::Write::write_all(&mut cut, br#"{"seq":99,"id":"evt_cut"#).unwrap();
        drop(cut);
        // A reset sends from seq 4 again: duplicates the bundle drops by id.
        let out = app.run(&["siem", "reset", "--name", "files", "--to-seq", "3"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(position(&app, "files"), 3);
        run("files");
        assert_eq!(seqs(&file).len() as u64, head + head - 3);
        assert_eq!(bundle_and_verify(&app, &[&file]), head);

        // An incomplete copy is not a bundle (exit 1).
        let partial = app.dir.path().join("partial.jsonl");
        let lines: Vec<&str> = exported_entries
            .iter()
            .copied()
            .filter(|l| !l.contains("\"seq\":4,"))
            .collect();
        std::fs::write(&partial, lines.join("\n")).unwrap();
        let out = app.run(&[
            "siem",
            "bundle",
            "--from",
            partial.to_str().unwrap(),
            "--out",
            app.dir.path().join("never.jsonl").to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("1 entries missing (seq 4)"));
        assert!(!app.dir.path().join("never.jsonl").exists());

        // Following, from a config file's database settings, until SIGTERM: a clean stop (exit 0).
        let config = app.dir.path().join("docketops.toml");
        std::fs::write(&config, format!("database_url = {:?}\n", app.database_url)).unwrap();
        let followed = app.dir.path().join("followed.jsonl");
        let mut follower = Command::new(BIN)
            .env_clear()
            .current_dir(app.dir.path())
            .arg("--config")
            .arg(&config)
            .args(["siem", "run", "--name", "follower", "--poll-interval", "0.1", "--sink"])
            .arg(format!("file:{}", followed.display()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the follower caught up", Duration::from_secs(30), || {
            position(&app, "follower") == head
        });
        app.append(2);
        wait_until("the follower took the new entries", Duration::from_secs(30), || {
            position(&app, "follower") == head + 2
        });
        let term = Command::new("kill")
            .args(["-TERM", &follower.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        assert!(follower.wait().unwrap().success(), "SIGTERM ends the export cleanly");
        assert_eq!(seqs(&followed), (1..=head + 2).collect::<Vec<_>>());
        let head = head + 2;

        // Standard output: the same lines.
        let out = app.run(&["siem", "run", "--sink", "stdout", "--name", "pipe", "--once"]);
        assert!(out.status.success());
        let piped: Vec<u64> = stdout(&out)
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap()["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(piped, (1..=head).collect::<Vec<_>>());
        app.finish().await;
    }
}

#[test]
fn bad_sinks_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .env_clear()
            .env("DOCKETOPS_DATA_DIR", dir.path())
            .args(["siem", "run", "--name", "x", "--once"])
            .args(args)
            .output()
            .unwrap()
    };
    for (args, message) in [
        (&["--sink", "udp://host:514"][..], "unknown scheme"),
        (&["--sink", "syslog://host"][..], "no port"),
        (&["--sink", "hec+https://splunk:8088"][..], "DOCKETOPS_HEC_TOKEN"),
        (
            &["--sink", "syslog+tls://h:1", "--ca", "/nonexistent.pem"][..],
            "nonexistent.pem",
        ),
        (
            &["--sink", "stdout", "--facility", "nope"][..],
            "unknown syslog facility",
        ),
        (&["--sink", "stdout"][..], "no ledger database"),
    ] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// A minimal HTTP Event Collector: answers `statuses` in turn (then 200), and keeps every request.
struct Collector {
    url: String,
    requests: Arc<Mutex<Vec<(u16, String, String)>>>,
}

impl Collector {
    async fn start(statuses: Vec<u16>) -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/services/collector/event",
            listener.local_addr().unwrap().port()
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(statuses.into_iter()));
        let kept = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                let Ok((connection, _)) = listener.accept().await else {
                    return;
                };
                let (kept, statuses) = (Arc::clone(&kept), Arc::clone(&statuses));
                tokio::spawn(async move {
                    let _ = serve_connection(connection, kept, statuses).await;
                });
            }
        });
        Collector { url, requests }
    }

    /// (status answered, authorization header, body) of each request.
    fn requests(&self) -> Vec<(u16, String, String)> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve_connection(
    mut connection: tokio::net::TcpStream,
    kept: Arc<Mutex<Vec<(u16, String, String)>>>,
    statuses: Arc<Mutex<std::vec::IntoIter<u16>>>,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    loop {
        let header_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 8192];
            let read = connection.read(&mut chunk).await?;
            if read == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..read]);
        };
        let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
        let header = |name: &str| {
            head.lines()
                .find_map(|line| {
                    let (n, v) = line.split_once(':')?;
                    n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        let length: usize = header("content-length").parse().unwrap_or(0);
        while buffer.len() < header_end + length {
            let mut chunk = [0u8; 65536];
            let read = connection.read(&mut chunk).await?;
            if read == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..read]);
        }
        let body = String::from_utf8_lossy(&buffer[header_end..header_end + length]).to_string();
        buffer.drain(..header_end + length);
        let status = statuses.lock().unwrap().next().unwrap_or(200);
        kept.lock().unwrap().push((status, header("authorization"), body));
        let answer = if status == 200 {
            r#"{"text":"Success","code":0}"#
        } else {
            r#"{"text":"Server is busy","code":9}"#
        };
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        connection.write_all(response.as_bytes()).await?;
    }
}

async fn run_blocking(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_export_retries_a_busy_collector_and_the_copy_verifies() {
    let app = TestApp::new("sqlite", "siem_hec").await;
    app.append(10);
    let head = head_seq(&app);
    let collector = Collector::start(vec![503, 503, 503]).await;
    let sink = format!("hec+{}", collector.url);
    let mut command = app.command();
    command
        .args([
            "siem",
            "run",
            "--sink",
            &sink,
            "--name",
            "splunk",
            "--once",
            "--batch",
            "4",
            "--max-backoff",
            "0.5",
        ])
        .env("DOCKETOPS_HEC_TOKEN", "test-token")
        .env("RUST_LOG", "info");
    let out = run_blocking(command).await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("HTTP 503"), "{log}");
    let requests = collector.requests();
    assert_eq!(requests.iter().filter(|r| r.0 == 503).count(), 3);
    assert!(requests.iter().all(|r| r.1 == "Splunk test-token"), "{requests:?}");

    // Accepted requests hold every entry once, in order, as HEC events around the whole entry.
    let accepted: Vec<Value> = requests
        .iter()
        .filter(|r| r.0 == 200)
        .flat_map(|r| {
            r.2.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let seqs: Vec<u64> = accepted.iter().map(|e| e["event"]["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=head).collect::<Vec<_>>());
    for event in &accepted {
        assert_eq!(event["sourcetype"], "docketops:ledger");
        assert!(event["time"].as_f64().unwrap() > 1.7e9);
        for field in [
            "id",
            "timestamp",
            "kind",
            "actor",
            "action_id",
            "payload",
            "prev_chain_hash",
            "event_hash",
        ] {
            assert!(event["event"].get(field).is_some(), "{field}");
        }
        for field in ["chain_hash", "key_id", "signature"] {
            assert!(event["event"][field].is_string(), "{field}");
        }
    }
    assert_eq!(position(&app, "splunk"), head);

    // What the collector accepted (HEC events, one per line) is a verifiable copy.
    let copy = app.dir.path().join("hec-copy.jsonl");
    let bodies: Vec<String> = requests.iter().filter(|r| r.0 == 200).map(|r| r.2.clone()).collect();
    std::fs::write(&copy, bodies.concat()).unwrap();
    assert_eq!(bundle_and_verify(&app, &[&copy]), head);

    // A refused token does not heal: the export ends at once (exit 2) and its position stays.
    let refusing = Collector::start(vec![403; 100]).await;
    let mut command = app.command();
    command
        .args([
            "siem",
            "run",
            "--sink",
            &format!("hec+{}", refusing.url),
            "--name",
            "refused",
            "--once",
        ])
        .env("DOCKETOPS_HEC_TOKEN", "wrong");
    let out = run_blocking(command).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 403"));
    assert_eq!(refusing.requests().len(), 1);
    assert_eq!(position(&app, "refused"), 0);
    app.finish().await;
}

/// The python of the OCSF validator's venv: DOCKETOPS_OCSF_PYTHON, else scripts/ensure-ocsf-validator.
fn ocsf_python() -> String {
    if let Ok(python) = std::env::var("DOCKETOPS_OCSF_PYTHON") {
        return python;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ensure-ocsf-validator");
    let out = Command::new(script).output().unwrap();
    assert!(
        out.status.success(),
        "ensure-ocsf-validator: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out).lines().last().unwrap().trim().to_string()
}

/// Runs crates/siem/tests/ocsf/validate.py over a file of OCSF events: (exit status 0, invalid lines).
fn validate_ocsf(path: &Path) -> (bool, Vec<String>) {
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("../siem/tests/ocsf/validate.py");
    let out = Command::new(ocsf_python())
        .arg(program)
        .args([siem::format::OCSF_VERSION, &siem::format::OCSF_CLASS_UID.to_string()])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let invalid = stdout(&out)
        .lines()
        .filter(|line| !line.contains("\"errors\": []"))
        .map(String::from)
        .collect();
    (out.status.success(), invalid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsf_and_ecs_exports_validate_reach_hec_and_the_copies_verify() {
    let app = TestApp::new("sqlite", "siem_formats").await;
    let out = app.run(&["seed-history", "--actions", "120", "--identities", "6", "--yes"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let head = head_seq(&app);
    let ocsf = app.dir.path().join("ocsf.jsonl");
    let sink = format!("file:{}", ocsf.display());
    let out = app.run(&[
        "siem", "run", "--sink", &sink, "--name", "soc", "--format", "ocsf", "--once",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> = std::fs::read_to_string(&ocsf)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len() as u64, head);
    let (valid, invalid) = validate_ocsf(&ocsf);
    assert!(valid, "{invalid:?}");
    let kinds: std::collections::BTreeSet<&str> = events
        .iter()
        .map(|e| e["metadata"]["event_code"].as_str().unwrap())
        .collect();
    for kind in [
        "action.requested",
        "risk.classified",
        "policy.decided",
        "approval.granted",
        "action.executed",
        "outcome.verified",
        "action.failed",
    ] {
        assert!(kinds.contains(kind), "{kind} in {kinds:?}");
    }
    assert!(
        events
            .iter()
            .any(|e| e["status_id"] == 2 && e["metadata"]["event_code"] == "policy.decided")
    );
    assert_eq!(bundle_and_verify(&app, &[&ocsf]), head);

    // A copy with one entry altered inside its event rebuilds, and the verifier refuses it.
    let text = std::fs::read_to_string(&ocsf).unwrap();
    let tampered_copy = app.dir.path().join("tampered.jsonl");
    std::fs::write(&tampered_copy, text.replacen("routine change", "routine chanGe", 1)).unwrap();
    let bundle = app.dir.path().join("tampered-bundle.jsonl");
    let out = app.run(&[
        "siem",
        "bundle",
        "--from",
        tampered_copy.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(BIN)
        .env_clear()
        .args(["verify", "--json", "--bundle"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["valid"], false, "{report}");

    // ECS to HEC, from the config file's table for the export, with the HEC fields set there.
    let collector = Collector::start(vec![]).await;
    let config = app.dir.path().join("siem.toml");
    std::fs::write(
        &config,
        format!(
            "[siem.exports.elastic]\nsink = \"hec+{}\"\nformat = \"ecs\"\nhec_index = \"security\"\n",
            collector.url
        ),
    )
    .unwrap();
    let mut command = app.command();
    command
        .args([
            "siem",
            "run",
            "--config",
            config.to_str().unwrap(),
            "--name",
            "elastic",
            "--once",
        ])
        .args(["--hostname", "gw-7", "--hec-source", "docketops:eu"])
        .env("DOCKETOPS_HEC_TOKEN", "test-token");
    let out = run_blocking(command).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let received = app.dir.path().join("hec.log");
    let bodies: Vec<String> = collector.requests().into_iter().map(|r| r.2).collect();
    std::fs::write(&received, bodies.concat()).unwrap();
    let hec: Vec<Value> = bodies
        .iter()
        .flat_map(|b| {
            b.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(hec.len() as u64, head);
    for (event, ocsf_event) in hec.iter().zip(&events) {
        assert_eq!(
            (&event["host"], &event["source"], &event["sourcetype"], &event["index"]),
            (
                &Value::from("gw-7"),
                &Value::from("docketops:eu"),
                &Value::from("docketops:ecs"),
                &Value::from("security")
            )
        );
        let doc = &event["event"];
        assert_eq!(doc["ecs"]["version"], siem::format::ECS_VERSION);
        assert_eq!(doc["event"]["id"], ocsf_event["metadata"]["uid"]);
        assert_eq!(doc["docketops"]["entry"], ocsf_event["unmapped"]["docketops"]["entry"]);
        if let Some(resource) = ocsf_event["resources"].get(0) {
            assert_eq!(doc["orchestrator"]["type"], "kubernetes");
            assert_eq!(doc["orchestrator"]["resource"]["type"], resource["type"]);
            assert_eq!(doc["orchestrator"]["namespace"], resource["namespace"]);
            assert_eq!(doc["orchestrator"]["cluster"]["name"], resource["data"]["cluster"]);
        }
    }
    assert_eq!(bundle_and_verify(&app, &[&received]), head);

    // HEC fields for a sink that is not HEC, and an unknown format, are usage errors.
    for args in [
        vec!["--sink", "stdout", "--hec-index", "x"],
        vec!["--sink", "stdout", "--format", "cef"],
    ] {
        let out = app.run(&[&["siem", "run", "--name", "bad", "--once"][..], &args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    app.finish().await;
}

//! A real OPA for the tests: `tools/opa-rest/server.py`, a small OPA REST server (`POST /v1/data/{path}`, and
//! `POST /v1/batch/data/{path}` for a corpus at once) on OPA's own Go engine (`opa/v1/rego`, from PyPI's
//! `opa-golib-python-bindings`), started as a child process with the given policy files and killed on drop.
//!
//! The interpreter comes from `DOCKETOPS_OPA_PYTHON` (scripts/test sets it), else from running
//! `scripts/ensure-opa` (which makes its venv once). Without it the tests fail: they never fall back to the
//! embedded engine.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// How long the server may take to load its policies and listen.
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Return a `decision_id` (OPA does when decision logging is enabled).
    pub decision_ids: bool,
    /// The revision of the `docketops` bundle reported in `provenance`.
    pub bundle_revision: Option<String>,
}

/// A running server; killed when dropped.
#[derive(Debug)]
pub struct RealOpa {
    pub url: String,
    child: Child,
    /// The policy files it loaded (written here when given as text).
    _dir: tempfile::TempDir,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The venv's python with the OPA bindings, found once per test process.
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Ok(path) = std::env::var("DOCKETOPS_OPA_PYTHON") {
            return path;
        }
        let script = root().join("scripts/ensure-opa");
        let output = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
        assert!(
            output.status.success(),
            "scripts/ensure-opa failed ({}): the OPA tests need OPA's engine (opa-golib-python-bindings from PyPI)",
            output.status
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout
            .lines()
            .last()
            .expect("scripts/ensure-opa prints the python path")
            .trim()
            .to_string()
    })
}

impl RealOpa {
    /// Starts the server with policies given as `(file name, text)`.
    pub fn start(sources: &[(String, String)], options: Options) -> RealOpa {
        RealOpa::try_start(sources, options).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Starts the server, or says why it did not start (OPA refused a policy, say).
    pub fn try_start(sources: &[(String, String)], options: Options) -> Result<RealOpa, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = Vec::new();
        for (name, text) in sources {
            let file = dir.path().join(name);
            std::fs::write(&file, text).expect("write the policy");
            files.push(file);
        }
        RealOpa::start_files(&files, options, dir)
    }

    /// Starts the server with the shipped default policy.
    pub fn default_policy(options: Options) -> RealOpa {
        RealOpa::start(&[("default.rego".into(), policy::DEFAULT_POLICY.into())], options)
    }

    /// Starts the server with a fixture under `tests/data/`.
    pub fn fixture(name: &str) -> RealOpa {
        let dir = tempfile::tempdir().expect("tempdir");
        RealOpa::start_files(&[crate::common::data(name)], Options::default(), dir)
            .unwrap_or_else(|error| panic!("{error}"))
    }

    fn start_files(files: &[PathBuf], options: Options, dir: tempfile::TempDir) -> Result<RealOpa, String> {
        let mut command = Command::new(python());
        command.arg(root().join("tools/opa-rest/server.py"));
        if options.decision_ids {
            command.arg("--decision-ids");
        }
        if let Some(revision) = &options.bundle_revision {
            command.args(["--bundle-revision", revision]);
        }
        command.args(files).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start the OPA server with {}: {error}", python()));
        let stdout = child.stdout.take().expect("stdout");
        match first_line(stdout) {
            Some(line) if line.starts_with("listening on ") => {
                // Its messages (a policy's print, a crash) go to the test's stderr; a full pipe would block it.
                if let Some(mut stderr) = child.stderr.take() {
                    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::stderr()));
                }
                Ok(RealOpa {
                    url: line.trim_start_matches("listening on ").trim().to_string(),
                    child,
                    _dir: dir,
                })
            }
            line => {
                let _ = child.kill();
                let mut errors = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = stderr.read_to_string(&mut errors);
                }
                let _ = child.wait();
                Err(format!("the OPA server did not start (stdout: {line:?}): {errors}"))
            }
        }
    }

    /// Stops the server; returns once the process is gone.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Evaluates `path` for every input in one `POST /v1/batch/data/{path}?strict-builtin-errors=true` (as the
    /// OpaClient asks); each answer as OPA gives it for one input: `{"result": …}`, `{}` (undefined) or
    /// `{"code", "message", …}` (an error).
    pub async fn batch(&self, path: &str, inputs: &[Value]) -> Vec<Value> {
        let keyed: serde_json::Map<String, Value> = inputs
            .iter()
            .enumerate()
            .map(|(index, input)| (index.to_string(), input.clone()))
            .collect();
        let response = reqwest::Client::new()
            .post(format!("{}/v1/batch/data/{path}?strict-builtin-errors=true", self.url))
            .json(&json!({"inputs": keyed}))
            .send()
            .await
            .expect("the OPA server answers");
        assert!(response.status().is_success(), "batch: {}", response.status());
        let mut body: Value = response.json().await.expect("JSON");
        (0..inputs.len())
            .map(|index| body["responses"][index.to_string()].take())
            .collect()
    }
}

impl Drop for RealOpa {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The server's first line on stdout, or `None` when it exits or stays silent for START_TIMEOUT.
fn first_line(stdout: ChildStdout) -> Option<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(read.ok().filter(|n| *n > 0).map(|_| line));
    });
    receiver.recv_timeout(START_TIMEOUT).ok().flatten()
}

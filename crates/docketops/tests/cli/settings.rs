//! The binary's own surface: `--help`, settings from a config file under flags and environment variables,
//! and the gateway over HTTPS.

use std::process::Command;

use serde_json::Value;

use super::{BIN, Server, TestApp, self_signed_certificate, stdout};

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

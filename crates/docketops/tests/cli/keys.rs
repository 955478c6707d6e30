//! Interoperable keys: the signing key file loads in OpenSSL and Python's `cryptography`, `keys export`
//! prints the public key in the forms other tools read, and an entry's signature verifies with `openssl
//! pkeyutl` over the message docs/ledger-format.md §4.2 documents; a key the ledger used before cannot be
//! rotated in again.

use std::path::Path;
use std::process::Command;

use super::{Server, TestApp, stdout};

fn run_ok(app: &TestApp, args: &[&str]) -> String {
    let out = app.run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

/// `openssl pkeyutl -verify` of `signature` over `message` with the PEM public key `public`.
fn openssl_verifies(dir: &Path, public: &str, message: &[u8], signature: &[u8]) -> bool {
    std::fs::write(dir.join("public.pem"), public).unwrap();
    std::fs::write(dir.join("message.bin"), message).unwrap();
    std::fs::write(dir.join("signature.bin"), signature).unwrap();
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(["pkeyutl", "-verify", "-pubin", "-inkey", "public.pem", "-rawin"])
        .args(["-in", "message.bin", "-sigfile", "signature.bin"])
        .output()
        .expect("openssl must be installed");
    let said = String::from_utf8_lossy(&out.stdout);
    out.status.success() && said.contains("Signature Verified Successfully")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_load_in_openssl_and_python_and_signatures_verify_with_openssl() {
    let app = TestApp::new("sqlite", "keys_interop").await;
    run_ok(&app, &["seed-history", "--actions", "3", "--yes", "--quiet"]);
    let key_file = app.data_dir().join("signing-key.pem");

    let openssl = Command::new("openssl")
        .args(["pkey", "-noout", "-in"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(
        openssl.status.success(),
        "openssl pkey refused the key file: {}",
        String::from_utf8_lossy(&openssl.stderr)
    );
    let python = Command::new("python3")
        .args([
            "-c",
            "import sys; from cryptography.hazmat.primitives import serialization as s; \
             k = s.load_pem_private_key(open(sys.argv[1], 'rb').read(), None); \
             print(k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw).hex())",
        ])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(
        python.status.success(),
        "cryptography refused the key file: {}",
        String::from_utf8_lossy(&python.stderr)
    );

    // The exported forms name the same key as the file and the ledger.
    let hex = run_ok(&app, &["keys", "export", "--format", "hex"]);
    assert_eq!(hex.trim(), stdout(&python).trim(), "python derives the exported key");
    let pem = run_ok(&app, &["keys", "export", "--format", "pem"]);
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let all = run_ok(&app, &["keys", "export"]);
    assert!(all.contains(hex.trim()) && all.contains("BEGIN PUBLIC KEY"), "{all}");

    // An entry's signature, over the documented message, verifies with OpenSSL; a changed byte does not.
    let entry = app.store().await.head().await.unwrap().unwrap();
    let chain_hash = hex_bytes(entry.chain_hash.trim_start_matches("sha256:"));
    let mut message = b"docketops-ledger/v1/entry-signature\0".to_vec();
    message.extend_from_slice(entry.key_id.as_bytes());
    message.push(0);
    message.extend_from_slice(&chain_hash);
    assert_eq!(message.len(), 93);
    let signature = hex_bytes(&entry.signature);
    assert!(openssl_verifies(app.dir.path(), &pem, &message, &signature));
    let mut changed = message.clone();
    changed[92] ^= 1;
    assert!(
        !openssl_verifies(app.dir.path(), &pem, &changed, &signature),
        "a changed chain hash must not verify"
    );

    // The signed-note verifier key is the one the transparency log's checkpoints name.
    let none_yet = run_ok(&app, &["keys", "export"]);
    assert!(none_yet.contains("none yet"), "{none_yet}");
    let server = Server::start(&app);
    let (status, checkpoint) = server.admin_get("/api/v1/ledger/checkpoint").await;
    assert_eq!(status, 200, "{checkpoint}");
    drop(server);
    let vkey = run_ok(&app, &["keys", "export", "--format", "vkey"]);
    assert_eq!(
        checkpoint["verifier_keys"][0].as_str(),
        Some(vkey.trim()),
        "{checkpoint}"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_ledger_used_before_cannot_be_rotated_in_again() {
    let app = TestApp::new("sqlite", "keys_reuse").await;
    run_ok(&app, &["seed-history", "--actions", "1", "--yes", "--quiet"]);
    let first = app.dir.path().join("first-key.pem");
    std::fs::copy(app.data_dir().join("signing-key.pem"), &first).unwrap();
    run_ok(&app, &["keys", "rotate"]);
    let out = app.run(&["keys", "rotate", "--new-key", first.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the old key was rotated in again");
    assert!(
        stderr.contains("was used by this ledger before (introduced at seq 1)"),
        "{stderr}"
    );
    assert!(!stderr.to_lowercase().contains("constraint"), "{stderr}");
    assert_eq!(app.run(&["verify"]).status.code(), Some(0));
    app.finish().await;
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

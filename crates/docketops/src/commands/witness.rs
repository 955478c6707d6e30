//! `docketops witness`: a C2SP tlog-witness for DocketOps ledgers (and any log of Ed25519-signed C2SP
//! checkpoints). See docs/witness.md.
//!
//! The witness reads its own config file (the global `--config FILE`), not the gateway's: flags and
//! environment variables win over it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail, ensure};
use clap::{Args, Subcommand};
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ledger_core::tlog::checkpoint::{WitnessSigner, is_valid_origin, parse_log_verifier_key};
use ledger_core::{LedgerPublicKey, LedgerSigningKey};
use storage::witness::WitnessStore;

use crate::settings::{LogArgs, create_private_dir};

#[derive(Debug, Subcommand)]
pub enum WitnessCommand {
    /// Generate the witness's Ed25519 key (PKCS#8 PEM, mode 0600; never overwrites) and print its verifier
    /// key, `<name>+<id>+<key>`, which the logs and their verifiers add to their trusted witnesses.
    Keygen {
        /// The witness's key name, e.g. witness.example.com/w1.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Where to write the private key.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
    },
    /// Serve POST /add-checkpoint: cosign checkpoints of the configured logs that are consistent with
    /// the latest one this witness cosigned for each.
    Serve(WitnessArgs),
    /// Print each followed log's latest cosigned checkpoint as JSON.
    Status(WitnessArgs),
}

/// Each setting can also come from the config file; a flag or variable wins over it.
#[derive(Debug, Args)]
pub struct WitnessArgs {
    /// The witness's key name [config: name].
    #[arg(long, env = "DOCKETOPS_WITNESS_NAME", value_name = "NAME")]
    pub name: Option<String>,
    /// The witness's private key, PKCS#8 PEM [config: key_file].
    #[arg(long, env = "DOCKETOPS_WITNESS_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// The witness's SQLite database [config: database; default: ./witness-data/witness.db].
    #[arg(long, env = "DOCKETOPS_WITNESS_DATABASE", value_name = "FILE")]
    pub database: Option<PathBuf>,
    /// Address to listen on [config: listen; default: 127.0.0.1:8444].
    #[arg(long, env = "DOCKETOPS_WITNESS_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Log format on stderr: text or json [config: log_format; default: text].
    #[arg(long, env = "DOCKETOPS_LOG_FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
}

/// The witness's config file.
///
/// ```toml
/// name = "witness.example.com/w1"
/// key_file = "/etc/docketops-witness/witness-key.pem"
/// database = "/var/lib/docketops-witness/witness.db"
/// listen = "0.0.0.0:8444"
///
/// [[logs]]
/// origin = "ledger.example.com/docketops"
/// keys = ["ledger.example.com/docketops+1a2b3c4d+AU…"]
/// ```
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    name: Option<String>,
    key_file: Option<PathBuf>,
    database: Option<PathBuf>,
    listen: Option<SocketAddr>,
    log_format: Option<String>,
    #[serde(default)]
    logs: Vec<LogConfig>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LogConfig {
    origin: String,
    /// The log's verifier keys: during a key rotation the old and the new one (docs/witness.md).
    keys: Vec<String>,
}

/// The settings after the config file, flags and defaults, validated.
#[derive(Debug)]
struct Settings {
    name: Option<String>,
    key_file: Option<PathBuf>,
    database: PathBuf,
    listen: SocketAddr,
    log: LogArgs,
    logs: BTreeMap<String, Vec<LedgerPublicKey>>,
}

pub async fn run(command: WitnessCommand, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    match command {
        WitnessCommand::Keygen { name, key_file } => keygen(&name, &key_file),
        WitnessCommand::Serve(args) => serve(settings(args, config)?).await,
        WitnessCommand::Status(args) => status(settings(args, config)?).await,
    }
}

fn keygen(name: &str, key_file: &Path) -> anyhow::Result<ExitCode> {
    check_name(name)?;
    ensure!(
        !key_file.exists(),
        "{} exists; refusing to overwrite a witness key",
        key_file.display()
    );
    if let Some(dir) = key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    // A witness key is an Ed25519 key in the same PKCS#8 file format as the ledger's.
    let key = LedgerSigningKey::generate();
    crate::keyfile::write_private(key_file, &key)?;
    let signer = read_signer(name, key_file)?;
    println!("{}", signer.public().to_vkey());
    Ok(ExitCode::SUCCESS)
}

async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    settings.log.init();
    let name = settings
        .name
        .context("no witness name: set `name` in the config file or --name")?;
    let key_file = settings
        .key_file
        .context("no witness key: set `key_file` in the config file or --key-file")?;
    ensure!(
        !settings.logs.is_empty(),
        "the witness follows no log: add [[logs]] entries to the config file"
    );
    let signer = read_signer(&name, &key_file)?;
    let store = open_store(&settings.database).await?;
    let vkey = signer.public().to_vkey();
    let state = server::witness::WitnessState {
        store: store.clone(),
        signer,
        logs: settings.logs.into_iter().collect::<HashMap<_, _>>(),
    };
    let listener = std::net::TcpListener::bind(settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    // With port 0 the system picks one: log the real address (tests read it from here).
    let address = listener.local_addr()?;
    tracing::info!(
        witness = %vkey,
        logs = state.logs.len(),
        database = %settings.database.display(),
        "docketops witness listening on http://{address}"
    );
    server::serve(listener, server::witness::router(state), None, super::shutdown_signal())
        .await
        .with_context(|| format!("cannot serve on {address}"))?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn status(settings: Settings) -> anyhow::Result<ExitCode> {
    ensure!(
        settings.database.exists(),
        "no witness database at {} (set `database` or --database)",
        settings.database.display()
    );
    let store = open_store(&settings.database).await?;
    let mut logs = Vec::new();
    for origin in settings.logs.keys() {
        let state = store.state(origin).await?;
        logs.push(serde_json::json!({
            "origin": origin,
            "size": state.as_ref().map_or(0, |s| s.size),
            "root_hash": state.as_ref().map(|s| &s.root_hash),
            "cosigned_at": state.as_ref().map(|s| s.cosigned_at),
            "updated_at": state.as_ref().map(|s| &s.updated_at),
            "evidence": store.evidence_count(origin).await?,
        }));
    }
    store.close().await;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({ "logs": logs }))?
    );
    Ok(ExitCode::SUCCESS)
}

/// The config file (if any) under the flags and environment, then the defaults; validated.
fn settings(args: WitnessArgs, config: Option<&Path>) -> anyhow::Result<Settings> {
    let file = match config {
        Some(path) => load(path)?,
        None => ConfigFile::default(),
    };
    let name = args.name.or(file.name);
    if let Some(name) = &name {
        check_name(name)?;
    }
    let log_format = args.log_format.or(file.log_format).unwrap_or_else(|| "text".into());
    ensure!(
        ["text", "json"].contains(&log_format.as_str()),
        "log_format must be text or json"
    );
    Ok(Settings {
        name,
        key_file: args.key_file.or(file.key_file),
        database: args
            .database
            .or(file.database)
            .unwrap_or_else(|| PathBuf::from("./witness-data/witness.db")),
        listen: args.listen.or(file.listen).unwrap_or(([127, 0, 0, 1], 8444).into()),
        log: LogArgs { log_format },
        logs: followed_logs(file.logs)?,
    })
}

fn load(path: &Path) -> anyhow::Result<ConfigFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid witness config file {}", path.display()))
}

/// The `[[logs]]` entries by origin: each key must be a verifier key of that very origin.
fn followed_logs(entries: Vec<LogConfig>) -> anyhow::Result<BTreeMap<String, Vec<LedgerPublicKey>>> {
    let mut logs = BTreeMap::new();
    for entry in entries {
        let origin = entry.origin;
        ensure!(
            is_valid_origin(&origin),
            "[[logs]] origin {origin:?} is not a valid log origin (non-empty, no spaces or '+')"
        );
        ensure!(!entry.keys.is_empty(), "[[logs]] {origin:?}: no keys");
        let mut keys = Vec::new();
        for vkey in &entry.keys {
            let (key_origin, key) =
                parse_log_verifier_key(vkey).with_context(|| format!("[[logs]] {origin:?}: key {vkey:?}"))?;
            ensure!(
                key_origin == origin,
                "[[logs]] {origin:?}: the key {vkey:?} is for the origin {key_origin:?}"
            );
            keys.push(key);
        }
        if logs.insert(origin.clone(), keys).is_some() {
            bail!("[[logs]] {origin:?} is configured twice: list all its keys in one entry");
        }
    }
    Ok(logs)
}

fn check_name(name: &str) -> anyhow::Result<()> {
    // A witness name is a signed-note key name, the same rule as a log origin.
    ensure!(
        is_valid_origin(name),
        "the witness name {name:?} is not a valid signed-note key name (non-empty, no spaces or '+')"
    );
    Ok(())
}

fn read_signer(name: &str, key_file: &Path) -> anyhow::Result<WitnessSigner> {
    let pem = std::fs::read_to_string(key_file)
        .with_context(|| format!("cannot read the witness key {}", key_file.display()))?;
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
        .map_err(|e| anyhow::anyhow!("witness key {}: {e}", key_file.display()))?;
    Ok(WitnessSigner::new(name, key)?)
}

async fn open_store(path: &Path) -> anyhow::Result<WitnessStore> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    WitnessStore::open(path)
        .await
        .with_context(|| format!("cannot open the witness database {}", path.display()))
}

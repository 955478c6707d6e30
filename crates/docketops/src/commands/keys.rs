use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use ledger_core::tlog::checkpoint::log_verifier_key;
use ledger_core::{LedgerPublicKey, LedgerSigningKey};
use storage::{AppendConfig, Ledger};

use crate::keyfile;
use crate::settings::{DatabaseArgs, LogArgs, SigningKeyArgs};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the public keys the ledger has introduced, and which one signs now.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a public key of the ledger (the active one unless --key-id) in the forms other tools read: PEM
    /// (SubjectPublicKeyInfo, for `openssl pkeyutl -verify -pubin`), raw hex (as entries name it), and the
    /// C2SP signed-note verifier key of the transparency log (`<origin>+<id>+<base64>`, for Go's `note`
    /// package and witnesses). A signature of an entry verifies with `openssl pkeyutl -verify -rawin` over the
    /// message of docs/ledger-format.md §4.2.
    Export {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The key to print, e.g. ed25519:56475aa75463474c [default: the one that signs now].
        #[arg(long)]
        key_id: Option<String>,
        /// Print only this form (for scripts).
        #[arg(long, value_enum)]
        format: Option<PublicKeyFormat>,
    },
    /// Rotate the signing key: append a ledger.key_rotated entry, signed by the current key, that
    /// introduces the new one. Entries signed before stay verifiable. Restart every gateway afterwards
    /// so that all sign with the new key.
    Rotate {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        key: SigningKeyArgs,
        /// Use this PKCS#8 PEM key instead of generating one (for keys kept in a secret store).
        #[arg(long, value_name = "FILE")]
        new_key: Option<PathBuf>,
        /// Who rotates (recorded in the entry).
        #[arg(long, default_value = "cli")]
        actor: String,
        #[command(flatten)]
        log: LogArgs,
    },
}

/// One form of a public key (`keys export --format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PublicKeyFormat {
    /// PEM `PUBLIC KEY` (X.509 SubjectPublicKeyInfo).
    Pem,
    /// The 32 bytes as 64 lowercase hex digits.
    Hex,
    /// The C2SP signed-note verifier key, with the transparency log's origin.
    Vkey,
}

impl KeysCommand {
    pub fn apply_config(&mut self, config: &crate::settings::ConfigFile, matches: &clap::ArgMatches) {
        match self {
            KeysCommand::List { database, .. } | KeysCommand::Export { database, .. } => {
                database.apply(config, matches)
            }
            KeysCommand::Rotate { database, key, log, .. } => {
                database.apply(config, matches);
                key.apply(config, matches);
                log.apply(config, matches);
            }
        }
    }
}

pub async fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::List { database, json } => {
            let store = database.connect_existing().await?;
            let keys = store.keys().await?;
            let active = store.next_signing_key_id().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({"keys": keys, "active_key_id": active}))?
                );
            } else {
                for key in keys {
                    let mark = if Some(&key.key_id) == active.as_ref() {
                        " (active)"
                    } else {
                        ""
                    };
                    println!(
                        "{} {} introduced at seq {}{mark}",
                        key.key_id, key.public_key, key.introduced_seq
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Export {
            database,
            key_id,
            format,
        } => export(database, key_id, format).await,
        KeysCommand::Rotate {
            database,
            key,
            new_key,
            actor,
            log,
        } => {
            log.init();
            let store = database.connect_existing().await?;
            store.migrate().await?;
            let source = keyfile::source(&database, &key);
            // The key lock is held until the key files are swapped: no other process may load, recover
            // or rotate the key in between.
            let (current, _key_lock) = keyfile::load_or_generate(&source, &store).await?;
            let old_id = current.key_id().to_string();
            let next = match &new_key {
                Some(path) => keyfile::read(path)?,
                None => LedgerSigningKey::generate(),
            };
            if next.key_id() == old_id {
                bail!("the new key is the current key");
            }
            // A key is introduced once: signatures name keys by id, so a key back in use would make its
            // old and new entries indistinguishable to a verifier tracking which key was active when.
            if let Some(used) = store.keys().await?.into_iter().find(|k| k.key_id == next.key_id()) {
                bail!(
                    "the new key {} was used by this ledger before (introduced at seq {}); rotate to a key the \
                     ledger has never used (omit --new-key to generate one)",
                    used.key_id,
                    used.introduced_seq
                );
            }
            // Keep the new private key safe on disk before the ledger names it.
            let key_path = match (&new_key, &source) {
                (None, keyfile::KeySource::Env) => {
                    keyfile::require_file(&source)?;
                    None
                }
                (_, keyfile::KeySource::File(path)) => {
                    keyfile::write_private(&keyfile::next_path(path), &next).context("cannot stage the new key")?;
                    Some(path.clone())
                }
                (Some(_), keyfile::KeySource::Env) => None,
            };
            let next_id = next.key_id().to_string();
            let ledger = Ledger::start(store.clone(), current, AppendConfig::default());
            let entry = ledger
                .rotate(next, &actor)
                .await
                .context("the rotation entry was not written")?;
            if let Some(path) = key_path {
                let retired = keyfile::complete_rotation(&path, &old_id)?;
                eprintln!("old key kept at {}", retired.display());
            } else {
                eprintln!("update DOCKETOPS_SIGNING_KEY to the new key before restarting the gateways");
            }
            println!("rotated {old_id} -> {next_id} at seq {} ({})", entry.seq, entry.id);
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `keys export`: the key's forms, each labelled, or one bare with `--format`.
async fn export(
    database: DatabaseArgs,
    key_id: Option<String>,
    format: Option<PublicKeyFormat>,
) -> anyhow::Result<ExitCode> {
    let store = database.connect_existing().await?;
    let wanted = match key_id {
        Some(id) => id,
        None => store
            .next_signing_key_id()
            .await?
            .context("the ledger is empty: start the gateway once to write its genesis entry")?,
    };
    let keys = store.keys().await?;
    let record = keys
        .iter()
        .find(|k| k.key_id == wanted)
        .with_context(|| format!("no key {wanted} in this ledger (`docketops keys list` shows them)"))?;
    let key = LedgerPublicKey::from_hex(&record.public_key).context("the stored public key")?;
    let origin = crate::commands::transparency::stored_origin(&store).await?;
    store.close().await;
    let pem = key.to_pem()?;
    let vkey = origin.as_deref().map(|origin| log_verifier_key(origin, &key));
    match format {
        Some(PublicKeyFormat::Pem) => print!("{pem}"),
        Some(PublicKeyFormat::Hex) => println!("{}", key.hex()),
        Some(PublicKeyFormat::Vkey) => println!(
            "{}",
            vkey.context("the transparency log has no origin yet: start the gateway once (`docketops serve`)")?
        ),
        None => {
            println!("key id: {} (introduced at seq {})", key.key_id, record.introduced_seq);
            println!("public key, PEM (SubjectPublicKeyInfo):\n{pem}");
            println!("public key, hex: {}", key.hex());
            match vkey {
                Some(vkey) => println!("transparency log verifier key (C2SP signed note): {vkey}"),
                None => println!("transparency log verifier key: none yet (start the gateway once)"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use ledger_core::LedgerSigningKey;
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

impl KeysCommand {
    pub fn apply_config(&mut self, config: &crate::settings::ConfigFile, matches: &clap::ArgMatches) {
        match self {
            KeysCommand::List { database, .. } => database.apply(config, matches),
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

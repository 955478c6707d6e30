use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use ledger_core::json::{self, Numbers};
use ledger_core::{Digest, NewEvent};
use storage::{AppendConfig, Ledger};

use crate::keyfile;
use crate::settings::{DatabaseArgs, LogArgs, SigningKeyArgs};

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Print the RFC 8785 canonical form of a JSON document (auditors recompute hashes with it).
    ///
    /// `docketops ledger canonicalize event.json --hash` prints sha256:<hex> of the canonical bytes,
    /// which is an entry's event_hash when event.json is its event object.
    Canonicalize {
        /// JSON file to read [default: standard input].
        file: Option<PathBuf>,
        /// Print the SHA-256 of the canonical form instead of the form itself.
        #[arg(long)]
        hash: bool,
    },
    /// Append an operator note (kind ledger.note) to the ledger, signed like every entry.
    Append(AppendArgs),
}

#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The note's text.
    #[arg(long, short)]
    pub message: Option<String>,
    /// A JSON object to record as the payload (instead of, or with, --message).
    #[arg(long, value_name = "JSON")]
    pub payload: Option<String>,
    /// Who writes the note.
    #[arg(long, default_value = "cli")]
    pub actor: String,
    /// Append this many notes (load testing); the last entry is printed.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub repeat: u64,
    /// With --repeat: how many appends are in flight at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub concurrency: u64,
    /// Print "ack <seq>" as each append becomes durable (crash tests read these).
    #[arg(long, hide = true)]
    pub print_acks: bool,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub key: SigningKeyArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

impl LedgerCommand {
    pub fn apply_config(&mut self, config: &crate::settings::ConfigFile, matches: &clap::ArgMatches) {
        if let LedgerCommand::Append(args) = self {
            args.database.apply(config, matches);
            args.key.apply(config, matches);
            args.log.apply(config, matches);
        }
    }
}

pub async fn run(command: LedgerCommand) -> anyhow::Result<ExitCode> {
    match command {
        LedgerCommand::Canonicalize { file, hash } => canonicalize(file, hash),
        LedgerCommand::Append(args) => append(args).await,
    }
}

fn canonicalize(file: Option<PathBuf>, hash: bool) -> anyhow::Result<ExitCode> {
    let mut text = String::new();
    match &file {
        Some(path) => {
            text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        None => {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
        }
    }
    let canonical = json::canonicalize_text(&text, Numbers::Any)?;
    let mut out = std::io::stdout().lock();
    if hash {
        writeln!(out, "{}", Digest::of(canonical.as_bytes()))?;
    } else {
        out.write_all(canonical.as_bytes())?;
        // A trailing newline only for people: piped into sha256sum, the bytes must be exact.
        if out.is_terminal() {
            writeln!(out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn append(args: AppendArgs) -> anyhow::Result<ExitCode> {
    args.log.init();
    let mut payload = match &args.payload {
        Some(text) => json::parse(text, Numbers::SafeIntegers).context("--payload")?,
        None => serde_json::json!({}),
    };
    let object = payload.as_object_mut().context("--payload must be a JSON object")?;
    if let Some(message) = &args.message {
        object.insert("message".into(), message.clone().into());
    }
    let store = args.database.connect().await?;
    store.migrate().await?;
    let (key, key_lock) = keyfile::load_or_generate(&keyfile::source(&args.database, &args.key), &store).await?;
    let ledger = Ledger::start(store.clone(), key, AppendConfig::default());
    ledger.initialize().await?;
    drop(key_lock);
    let event = NewEvent::new(ledger_core::entry::KIND_NOTE, args.actor.clone(), payload);

    let remaining = Arc::new(std::sync::atomic::AtomicU64::new(args.repeat));
    let mut workers = tokio::task::JoinSet::new();
    let print_acks = args.print_acks;
    for _ in 0..args.concurrency.min(args.repeat) {
        let (ledger, event, remaining) = (ledger.clone(), event.clone(), Arc::clone(&remaining));
        workers.spawn(async move {
            let mut last = None;
            while remaining
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok()
            {
                let entry = ledger.append(event.clone()).await?;
                if print_acks {
                    println!("ack {}", entry.seq);
                }
                last = Some(entry);
            }
            anyhow::Ok(last)
        });
    }
    let mut last = None;
    while let Some(result) = workers.join_next().await {
        if let Some(entry) = result??
            && last.as_ref().is_none_or(|l: &ledger_core::Entry| entry.seq > l.seq)
        {
            last = Some(entry);
        }
    }
    let last = last.context("nothing was appended")?;
    println!("{}", serde_json::to_string_pretty(&last)?);
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

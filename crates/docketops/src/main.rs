//! `docketops`: the gateway server and its command line. A thin layer over the library crates:
//! it parses arguments, reads files and environment, and reports; the work happens in the libraries.

mod bench;
mod commands;
mod keyfile;
mod settings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::{DatabaseArgs, LogArgs};

/// DocketOps Ledger: a governance gateway in front of the Kubernetes API that records every request,
/// decision, approval and outcome in a hash-chained, Ed25519-signed ledger anyone can verify.
///
/// Start with `docketops serve` (SQLite and a signing key are created under ./docketops-data), then
/// check the ledger at any time with `docketops verify`.
#[derive(Debug, Parser)]
#[command(name = "docketops", version, propagate_version = true, max_term_width = 110)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway's HTTP API.
    Serve(commands::serve::ServeArgs),
    /// Apply database migrations and exit (serve also applies them unless --no-migrate).
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Verify the ledger: every hash, link and signature, from a database or an exported bundle.
    ///
    /// Exit status: 0 the ledger is valid, 1 it is not (the first bad entry is named), 2 usage or I/O
    /// error.
    Verify(commands::verify::VerifyArgs),
    /// Write the ledger to a self-contained bundle file that `docketops verify --bundle` checks offline.
    Export(commands::export::ExportArgs),
    /// Ledger tools: canonical JSON for auditors, operator notes.
    Ledger {
        #[command(subcommand)]
        command: commands::ledger::LedgerCommand,
    },
    /// The ledger's signing keys: list, rotate.
    Keys {
        #[command(subcommand)]
        command: commands::keys::KeysCommand,
    },
    /// API keys for callers.
    ApiKey {
        #[command(subcommand)]
        command: commands::apikey::ApiKeyCommand,
    },
    /// Measure signing, durable appends and verification on this machine.
    Bench(bench::BenchArgs),
}

/// Exit status of a failed command (usage or I/O error), as `docketops verify` documents it.
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => commands::serve::run(args).await,
        Command::Migrate { database, log } => {
            log.init();
            let store = database.connect().await?;
            store.migrate().await?;
            println!("migrations applied to {}", database.describe());
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(args) => commands::verify::run(args).await,
        Command::Export(args) => commands::export::run(args).await,
        Command::Ledger { command } => commands::ledger::run(command).await,
        Command::Keys { command } => commands::keys::run(command).await,
        Command::ApiKey { command } => commands::apikey::run(command),
        Command::Bench(args) => bench::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

//! `docketops`: the gateway server and its command line. A thin layer over the library crates:
//! it parses arguments, reads files and environment, and reports; the work happens in the libraries.

mod bench;
mod bench_dashboard;
mod bench_gateway;
mod commands;
mod keyfile;
mod settings;
mod soak;
mod telemetry;

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
    /// A TOML config file with the same settings as the flags (see README); flags and environment
    /// variables win over it.
    #[arg(long, global = true, env = "DOCKETOPS_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway's HTTP API.
    Serve(Box<commands::serve::ServeArgs>),
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
    /// The executor's Kubernetes side: RBAC manifests, and a check of a cluster's set-up.
    Kube {
        #[command(subcommand)]
        command: commands::kube::KubeCommand,
    },
    /// Policies: evaluate one offline (`test`), or replay a candidate against recorded decisions (`replay`).
    Policy {
        #[command(subcommand)]
        command: commands::policy::PolicyCommand,
    },
    /// Identities (agents and humans) and their roles and scopes: create, list, suspend, reactivate, revoke.
    Identities {
        #[command(subcommand)]
        command: commands::identities::IdentitiesCommand,
    },
    /// An identity's trust score recomputed from an exported bundle, with the entries that moved it
    /// (`--bundle FILE --identity ID`); `rebuild` recomputes the scores the database keeps.
    Trust(commands::trust::TrustArgs),
    /// An MCP server on stdio for local agent hosts, acting through a gateway's API with one API key.
    Mcp(commands::mcp::McpArgs),
    /// SIEM export: stream the ledger to syslog, Splunk HEC or JSON lines, resumably (`run`, `status`,
    /// `reset`), and turn a SIEM's copy back into a verifiable bundle (`bundle`).
    Siem {
        #[command(subcommand)]
        command: commands::siem::SiemCommand,
    },
    /// Reconcile the API server's audit log with the ledger: unmatched executions and bypasses.
    Audit {
        #[command(subcommand)]
        command: commands::audit::AuditCommand,
    },
    /// The kill switch: stop every mutation in a scope (everything, a cluster, a namespace, an identity,
    /// every agent) until it is lifted; `--list` shows what is frozen.
    Freeze(commands::freeze::FreezeArgs),
    /// Lift a freeze (never with an agent's key).
    Unfreeze(commands::freeze::UnfreezeArgs),
    /// An identity's own blast-radius budget (admin, through a gateway's API): set limits that apply besides
    /// the configured budgets, show them with their usage, or clear them.
    Budget {
        #[command(subcommand)]
        command: commands::budget::BudgetCommand,
    },
    /// API keys for callers.
    ApiKey {
        #[command(subcommand)]
        command: commands::apikey::ApiKeyCommand,
    },
    /// Append realistic history in bulk (identities, actions and their entries, signed by the ledger's key)
    /// for benchmarks and tests of a large ledger. The entries are permanent; needs --yes.
    SeedHistory(Box<commands::seed::SeedArgs>),
    /// Measure signing, durable appends and verification on this machine.
    Bench(bench::BenchArgs),
    /// Measure governed actions end to end against a running gateway and API server (scripts/bench-gateway).
    BenchGateway(bench_gateway::BenchGatewayArgs),
    /// Measure the dashboard's page times against a running gateway, signed in as a browser is
    /// (scripts/bench-dashboard seeds a million-entry ledger first).
    BenchDashboard(bench_dashboard::BenchDashboardArgs),
    /// A transparency-log witness (C2SP tlog-witness): run it where the log's operator has no access, and
    /// it cosigns a log's checkpoint only if it is consistent with every one it cosigned before, so a
    /// verifier who asks for its cosignature cannot be shown a rewritten or forked ledger (docs/witness.md).
    ///
    /// `keygen` makes its key, `serve --config witness.toml` runs it (its own config file: name, key_file,
    /// database, listen, [[logs]]), `status` prints the latest cosigned size of each log.
    Witness {
        #[command(subcommand)]
        command: commands::witness::WitnessCommand,
    },
}

/// Exit status of a failed command (usage or I/O error), as `docketops verify` documents it.
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    // The witness reads its own config file (commands/witness.rs), not the gateway's.
    let witness = matches!(cli.command, Command::Witness { .. });
    if let Some(path) = cli.config.clone().filter(|_| !witness) {
        match settings::ConfigFile::load(&path) {
            Ok(config) => cli.command.apply_config(&config, leaf(&matches)),
            Err(error) => {
                eprintln!("error: {error:#}");
                return ExitCode::from(EXIT_ERROR);
            }
        }
    }
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

/// The matches of the innermost subcommand, where its flattened arguments live.
fn leaf(matches: &clap::ArgMatches) -> &clap::ArgMatches {
    let mut current = matches;
    while let Some((_, sub)) = current.subcommand() {
        current = sub;
    }
    current
}

impl Command {
    /// Fills settings that neither a flag nor the environment gave from the config file.
    fn apply_config(&mut self, config: &settings::ConfigFile, matches: &clap::ArgMatches) {
        match self {
            Command::Serve(args) => args.apply_config(config, matches),
            Command::Migrate { database, log } => {
                database.apply(config, matches);
                log.apply(config, matches);
            }
            Command::Verify(args) => {
                args.database.apply(config, matches);
                args.key.apply(config, matches);
            }
            Command::Export(args) => args.database.apply(config, matches),
            Command::Ledger { command } => command.apply_config(config, matches),
            Command::Keys { command } => command.apply_config(config, matches),
            Command::Identities { command } => command.apply_config(config, matches),
            Command::Policy { command } => command.apply_config(config, matches),
            Command::Siem { command } => command.apply_config(config, matches),
            Command::Audit { command } => command.apply_config(config, matches),
            Command::Trust(args) => args.apply_config(config, matches),
            Command::SeedHistory(args) => args.apply_config(config, matches),
            Command::ApiKey { .. }
            | Command::Kube { .. }
            | Command::Mcp(_)
            | Command::Freeze(_)
            | Command::Unfreeze(_)
            | Command::Budget { .. }
            | Command::Bench(_)
            | Command::BenchGateway(_)
            | Command::BenchDashboard(_)
            | Command::Witness { .. } => {}
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => commands::serve::run(*args).await,
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
        Command::Kube { command } => commands::kube::run(command).await,
        Command::Trust(args) => commands::trust::run(args).await,
        Command::Mcp(args) => commands::mcp::run(args).await,
        Command::Identities { command } => commands::identities::run(command).await,
        Command::Policy { command } => commands::policy::run(command).await,
        Command::Siem { command } => commands::siem::run(command).await,
        Command::Audit { command } => commands::audit::run(command).await,
        Command::Freeze(args) => commands::freeze::freeze(args).await,
        Command::Unfreeze(args) => commands::freeze::unfreeze(args).await,
        Command::Budget { command } => commands::budget::run(command).await,
        Command::SeedHistory(args) => commands::seed::run(*args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::BenchGateway(args) => bench_gateway::run(args).await,
        Command::BenchDashboard(args) => bench_dashboard::run(args).await,
        Command::Witness { command } => commands::witness::run(command, cli.config.as_deref()).await,
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

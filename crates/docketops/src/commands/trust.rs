//! `docketops trust`: an identity's trust score recomputed from an exported bundle alone (no server, no
//! database), with the entries that moved it; the same function as the server's. `docketops trust rebuild`
//! recomputes the scores the database keeps beside the ledger.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use storage::{Store, TrustProgress};

use super::progress_bar;
use crate::settings::DatabaseArgs;

/// Without a subcommand: recompute one identity's score from a bundle (`--bundle FILE --identity ID`).
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TrustArgs {
    #[command(subcommand)]
    pub command: Option<TrustCommand>,
    /// A bundle from `docketops export` or `GET /api/v1/ledger/export` (check it with `docketops verify --bundle`).
    #[arg(long, value_name = "FILE", required = true)]
    pub bundle: Option<PathBuf>,
    /// The identity (`agt_…` or `usr_…`).
    #[arg(long, value_name = "ID", required = true)]
    pub identity: Option<String>,
    /// Print only the score.
    #[arg(long)]
    pub score_only: bool,
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Recompute every identity's stored trust score from the ledger's entries, from the first one.
    ///
    /// The gateway keeps each identity's score in tables beside the ledger, updated in the same
    /// transaction as the entries that move it; they are derived state, a pure function of the entries
    /// (the function of `docketops trust --bundle`). `serve` folds in entries they miss (written by an
    /// older release) at start and every 30 seconds, and recomputes them after a scoring change; this
    /// command recomputes them now, e.g. after restoring a backup. Safe while gateways run: each page of
    /// entries is folded under the ledger's write lock. Applies pending migrations first.
    Rebuild(RebuildArgs),
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

impl TrustArgs {
    pub fn apply_config(&mut self, config: &crate::settings::ConfigFile, matches: &clap::ArgMatches) {
        if let Some(TrustCommand::Rebuild(args)) = &mut self.command {
            args.database.apply(config, matches);
        }
    }
}

pub async fn run(args: TrustArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(TrustCommand::Rebuild(rebuild_args)) => rebuild(rebuild_args).await,
        None => {
            let (Some(bundle), Some(identity)) = (args.bundle, args.identity) else {
                anyhow::bail!("--bundle and --identity are required (or a subcommand: rebuild)");
            };
            from_bundle(&bundle, &identity, args.score_only)
        }
    }
}

fn from_bundle(bundle: &PathBuf, identity: &str, score_only: bool) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::open(bundle).with_context(|| format!("cannot open {}", bundle.display()))?;
    let mut scorer = ledger_core::trust::TrustScorer::new(identity);
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", bundle.display()))?;
        // Line 1 is the bundle header; every other line is one entry, in seq order.
        if number == 0 || line.is_empty() {
            continue;
        }
        let entry = ledger_core::bundle::parse_entry_line(&line)
            .map_err(|problem| anyhow::anyhow!("line {}: {problem}", number + 1))?;
        scorer.feed(&entry);
    }
    let report = scorer.report();
    if score_only {
        println!("{}", report.score);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}

async fn rebuild(args: RebuildArgs) -> anyhow::Result<ExitCode> {
    let store = args.database.connect_existing().await?;
    store.migrate().await.context("applying database migrations")?;
    let bar = progress_bar(0, "folding", args.quiet);
    let done = store
        .trust_rebuild(|page| {
            bar.set_length(page.head_seq);
            bar.set_position(page.folded_seq);
        })
        .await
        .context("rebuilding the trust scores")?;
    bar.finish_and_clear();
    println!(
        "trust scores rebuilt from {} entries of {}",
        done.folded_seq,
        args.database.describe()
    );
    Ok(ExitCode::SUCCESS)
}

/// How often `serve` looks for entries the trust tables miss (cheap when there are none: one lookup).
const CATCH_UP_PERIOD: Duration = Duration::from_secs(30);

/// Folds what the trust tables miss, logging progress when there is any.
pub async fn catch_up(store: &Store) -> Result<TrustProgress, storage::StorageError> {
    store
        .trust_catch_up(|page| {
            tracing::info!(
                folded_seq = page.folded_seq,
                head_seq = page.head_seq,
                "trust scores: folding entries written without them"
            );
        })
        .await
}

/// `serve`'s catch-up loop, so that a gateway beside an older release (rolling upgrade) converges.
pub async fn catch_up_periodically(store: Store) {
    let mut ticks = tokio::time::interval(CATCH_UP_PERIOD);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Err(error) = catch_up(&store).await {
            tracing::warn!(%error, "cannot bring the trust scores up to date");
        }
    }
}

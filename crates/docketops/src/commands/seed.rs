//! `docketops seed-history`: realistic history in bulk, for benchmarks and tests of a large ledger
//! (`storage::seed`). The entries are real (signed, chained, verifiable) and, like every entry, permanent.

use std::process::ExitCode;

use anyhow::{Context, ensure};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use storage::seed::{SeedConfig, seed_history};
use storage::{AppendConfig, Ledger};

use crate::keyfile;
use crate::settings::{ConfigFile, DatabaseArgs, SigningKeyArgs};

#[derive(Debug, Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub key: SigningKeyArgs,
    /// Actions to write (about 4.8 entries each: 212,000 make a million entries).
    #[arg(long, default_value_t = 10_000)]
    pub actions: u64,
    /// Identities to create first [default: a tenth of --actions, at least 2].
    #[arg(long)]
    pub identities: Option<u64>,
    /// Actions per append (one all-or-nothing group of entries).
    #[arg(long, default_value_t = 800)]
    pub chunk: usize,
    /// Appends in flight at once (the writer groups them into transactions of up to 4,096 entries).
    #[arg(long, default_value_t = 4)]
    pub in_flight: usize,
    /// The cluster the seeded actions name.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// Confirm: the seeded entries stay in the ledger for good (it is append-only).
    #[arg(long)]
    pub yes: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl SeedArgs {
    pub fn apply_config(&mut self, config: &ConfigFile, matches: &clap::ArgMatches) {
        self.database.apply(config, matches);
        self.key.apply(config, matches);
    }
}

pub async fn run(args: SeedArgs) -> anyhow::Result<ExitCode> {
    ensure!(
        args.yes,
        "seed-history appends fabricated history that can never be removed from {}; pass --yes to go ahead",
        args.database.describe()
    );
    // No log output: sqlx would warn about every bulk statement slower than a second.
    let store = args.database.connect().await?;
    store.migrate().await.context("applying database migrations")?;
    let (key, key_lock) = keyfile::load_or_generate(&keyfile::source(&args.database, &args.key), &store).await?;
    let config = AppendConfig {
        max_batch: 4096,
        ..AppendConfig::default()
    };
    let ledger = Ledger::start(store.clone(), key, config);
    ledger.initialize().await.context("the ledger cannot be written")?;
    drop(key_lock);

    let mut seed = SeedConfig::new(args.actions);
    seed.identities = args.identities.unwrap_or(seed.identities);
    seed.chunk_actions = args.chunk;
    seed.in_flight = args.in_flight;
    seed.cluster = args.cluster.clone();
    let bar = bar(seed.identities + seed.actions, args.quiet);
    let summary = seed_history(&store, &ledger, &seed, &|p| {
        bar.set_position(p.identities + p.actions);
        bar.set_message(format!("{} entries", p.entries));
    })
    .await?;
    bar.finish_and_clear();
    println!(
        "seeded {} identities, {} actions, {} entries in {:.1} s: {:.0} entries/s{}",
        summary.written.identities,
        summary.written.actions,
        summary.written.entries,
        summary.elapsed.as_secs_f64(),
        summary.entries_per_second(),
        if cfg!(debug_assertions) { " (debug build)" } else { "" }
    );
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn bar(total: u64, quiet: bool) -> ProgressBar {
    if quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "seeding [{bar:40}] {human_pos}/{human_len} identities+actions, {msg} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

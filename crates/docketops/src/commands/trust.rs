//! `docketops trust --bundle FILE --identity ID`: an identity's trust score recomputed from an exported
//! bundle alone (no server, no database), with the entries that moved it; the same function as the server's.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// A bundle from `docketops export` or `GET /api/v1/ledger/export` (check it with `docketops verify --bundle`).
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// The identity (`agt_…` or `usr_…`).
    #[arg(long, value_name = "ID")]
    pub identity: String,
    /// Print only the score.
    #[arg(long)]
    pub score_only: bool,
}

pub fn run(args: TrustArgs) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::open(&args.bundle).with_context(|| format!("cannot open {}", args.bundle.display()))?;
    let mut scorer = policy::trust::TrustScorer::new(&args.identity);
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", args.bundle.display()))?;
        // Line 1 is the bundle header; every other line is one entry, in seq order.
        if number == 0 || line.is_empty() {
            continue;
        }
        let entry = ledger_core::bundle::parse_entry_line(&line)
            .map_err(|problem| anyhow::anyhow!("line {}: {problem}", number + 1))?;
        scorer.feed(&entry);
    }
    let report = scorer.report();
    if args.score_only {
        println!("{}", report.score);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}

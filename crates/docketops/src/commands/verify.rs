use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use ledger_core::bundle::{self, BundleHeader};
use ledger_core::{Entry, LedgerPublicKey, Verifier, VerifyOptions, VerifyReport};
use rayon::prelude::*;

use super::progress_bar;
use crate::settings::DatabaseArgs;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify an exported bundle offline: no server, no database (database options are ignored).
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Require the ledger's genesis key to be this public key (64 hex digits; repeatable). Without it
    /// the genesis key is taken from the ledger itself: compare its key id with the one you trust.
    #[arg(long = "trusted-key", value_name = "HEX")]
    pub trusted_keys: Vec<String>,
    /// Check each signature on its own instead of in batches (slower).
    #[arg(long)]
    pub strict: bool,
    /// Print the report as JSON (the shape of GET /api/v1/ledger/verify).
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Lines read and parsed per verifier batch.
const BUNDLE_BATCH: usize = 4096;

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let trusted_genesis_keys = args
        .trusted_keys
        .iter()
        .map(|hex| LedgerPublicKey::from_hex(hex).with_context(|| format!("--trusted-key {hex}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let options = VerifyOptions {
        trusted_genesis_keys,
        strict_signatures: args.strict,
        ..VerifyOptions::default()
    };
    let report = match &args.bundle {
        Some(path) => {
            let path = path.clone();
            let quiet = args.quiet || args.json;
            tokio::task::spawn_blocking(move || verify_bundle(&path, options, quiet)).await??
        }
        None => {
            let store = args.database.connect_existing().await?;
            let total = store.head().await?.map_or(0, |head| head.seq);
            let bar = progress_bar(total, "verifying", args.quiet || args.json);
            let report =
                storage::verify_ledger(&store, options, |checked| bar.set_position(checked))
                    .await?;
            bar.finish_and_clear();
            report
        }
    };
    print_report(&report, args.json)?;
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Streams a bundle file through the verifier; memory holds one batch of lines at a time.
pub fn verify_bundle(
    path: &std::path::Path,
    mut options: VerifyOptions,
    quiet: bool,
) -> anyhow::Result<VerifyReport> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut lines = BufReader::with_capacity(1 << 20, file).lines();
    let header_line = lines.next().context("the bundle is empty")??;
    let header = BundleHeader::parse(&header_line)?;
    options.expected_head = header.head.as_ref().map(|h| (h.seq, h.chain_hash));
    let bar = progress_bar(header.entries, "verifying", quiet);
    let mut verifier = Verifier::new(options);
    let mut batch: Vec<String> = Vec::with_capacity(BUNDLE_BATCH);
    let mut more = true;
    while more && !verifier.is_invalid() {
        batch.clear();
        for line in lines.by_ref() {
            batch.push(line.with_context(|| format!("reading {}", path.display()))?);
            if batch.len() == BUNDLE_BATCH {
                break;
            }
        }
        more = batch.len() == BUNDLE_BATCH;
        // Parsing is as costly as hashing: do it on all cores too.
        let parsed: Vec<Result<Entry, String>> = batch
            .par_iter()
            .map(|l| bundle::parse_entry_line(l))
            .collect();
        let readable = parsed
            .iter()
            .position(Result::is_err)
            .unwrap_or(parsed.len());
        let entries: Vec<Entry> = parsed[..readable]
            .iter()
            .filter_map(|p| p.as_ref().ok().cloned())
            .collect();
        if verifier.check(&entries)
            && let Some(Err(message)) = parsed.get(readable)
        {
            let line = verifier.entries_checked() + 2;
            verifier.fail_unreadable(format!("line {line}: {message}"));
        }
        bar.set_position(verifier.entries_checked());
    }
    bar.finish_and_clear();
    Ok(verifier.finish())
}

fn print_report(report: &VerifyReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    match (&report.first_invalid, &report.head) {
        (None, Some(head)) => println!(
            "valid: {} entries checked, head seq {} {}",
            report.entries_checked, head.seq, head.chain_hash
        ),
        (None, None) => println!("valid: the ledger is empty"),
        (Some(invalid), _) => {
            println!(
                "INVALID at seq {}: {} ({})",
                invalid.seq,
                invalid.message,
                serde_json::to_value(invalid.reason)?
                    .as_str()
                    .unwrap_or("?")
            );
            println!("{} entries before it verified", report.entries_checked);
        }
    }
    for key in &report.keys {
        let retired = key.retired_seq.map_or_else(
            || "active".to_string(),
            |seq| format!("retired at seq {seq}"),
        );
        println!(
            "key {} ({}), introduced at seq {}, {}, signed {} entries",
            key.info.key_id, key.info.public_key, key.introduced_seq, retired, key.entries_signed
        );
    }
    Ok(())
}

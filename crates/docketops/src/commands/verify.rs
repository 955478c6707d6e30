use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use ledger_core::bundle::{self, BundleHeader};
use ledger_core::tlog::checkpoint::WitnessKey;
use ledger_core::tlog::{Hash, leaf_hash};
use ledger_core::{Digest, Entry, LedgerPublicKey, Verifier, VerifyOptions, VerifyReport};
use rayon::prelude::*;

use super::progress_bar;
use crate::settings::{DatabaseArgs, SigningKeyArgs};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify an exported bundle offline: no server, no database (database options are ignored).
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Verifying a database with the gateway's signing key at hand (this file, or the data directory's,
    /// or DOCKETOPS_SIGNING_KEY), the chain must include that key: a ledger rewritten wholesale under
    /// another key is refused.
    #[command(flatten)]
    pub key: SigningKeyArgs,
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
    /// Also check the bundle against a signed checkpoint kept elsewhere (the note text, e.g. saved from
    /// GET /checkpoint): a cut tail, a rewritten past re-signed with the real key and a forked history are
    /// each named. The checkpoint must be signed by a key the bundle's chain introduced; it is only as
    /// trustworthy as where it came from, unless --witness-key names witnesses that must have cosigned it.
    #[arg(long, value_name = "FILE", requires = "bundle")]
    pub checkpoint: Option<PathBuf>,
    /// Verify a receipt (a C2SP tlog-proof file from GET /api/v1/ledger/receipts/{id}) offline: its entry,
    /// the inclusion proof and the signed checkpoint. Needs --trusted-key: the ledger's public key(s).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["bundle", "checkpoint"])]
    pub receipt: Option<PathBuf>,
    /// A witness the checkpoint (or the receipt's) must be cosigned by: its verifier key
    /// `<name>+<hex id>+<base64 key>` (repeatable). Needs --origin: a witness vouches for one history per
    /// origin, so a log's second origin (signed with the same key) could show a second history.
    #[arg(long = "witness-key", value_name = "VKEY", requires = "origin")]
    pub witness_keys: Vec<String>,
    /// How many of the --witness-key witnesses must have cosigned (default: all of them).
    #[arg(long, value_name = "N")]
    pub quorum: Option<usize>,
    /// The log's origin the checkpoint (or the receipt's) must name, e.g. ledger.example.com/docketops.
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<String>,
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
    let mut witnesses = args
        .witness_keys
        .iter()
        .map(|k| WitnessKey::parse(k).with_context(|| format!("--witness-key {k}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The same witness named twice counts once (in the default quorum too), however it was spelled.
    let mut seen = std::collections::HashSet::new();
    witnesses.retain(|w| seen.insert(w.to_vkey()));
    let quorum = args.quorum.unwrap_or(witnesses.len());
    anyhow::ensure!(
        quorum <= witnesses.len(),
        "--quorum {quorum} is more than the {} --witness-key given",
        witnesses.len()
    );
    if let Some(path) = &args.receipt {
        let trust = super::verify_tlog::Trust {
            witnesses: &witnesses,
            quorum,
            origin: args.origin.as_deref(),
        };
        return super::verify_tlog::receipt(path, &options.trusted_genesis_keys, &trust, args.json);
    }
    let report = match &args.bundle {
        Some(path) => {
            let path = path.clone();
            let quiet = args.quiet || args.json;
            let keep = args.checkpoint.is_some();
            let trusted_keys = options.trusted_genesis_keys.clone();
            let (report, leaves) =
                tokio::task::spawn_blocking(move || verify_bundle_with_leaves(&path, options, quiet, keep)).await??;
            if let Some(checkpoint) = &args.checkpoint {
                let trust = super::verify_tlog::Trust {
                    witnesses: &witnesses,
                    quorum,
                    origin: args.origin.as_deref(),
                };
                return super::verify_tlog::bundle_against(
                    &report,
                    &leaves,
                    checkpoint,
                    &trusted_keys,
                    &trust,
                    args.json,
                );
            }
            report
        }
        None => {
            let mut options = options;
            options.required_key = local_signing_key(&args)?;
            let store = args.database.connect_read_only().await?;
            let total = store.head().await?.map_or(0, |head| head.seq);
            let bar = progress_bar(total, "verifying", args.quiet || args.json);
            let report = storage::verify_ledger(&store, options, |checked| bar.set_position(checked)).await?;
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

/// Streams a bundle file through the verifier. A reader thread splits lines while the verifier works
/// on the previous batch; memory holds at most three batches of lines.
pub fn verify_bundle(path: &std::path::Path, options: VerifyOptions, quiet: bool) -> anyhow::Result<VerifyReport> {
    Ok(verify_bundle_with_leaves(path, options, quiet, false)?.0)
}

/// [`verify_bundle`], also returning the transparency-log leaf hashes of the entries that verified when
/// `keep_leaves` (32 bytes per entry).
pub fn verify_bundle_with_leaves(
    path: &std::path::Path,
    mut options: VerifyOptions,
    quiet: bool,
    keep_leaves: bool,
) -> anyhow::Result<(VerifyReport, Vec<Hash>)> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buffer = Vec::new();
    let header_line =
        match next_line(&mut reader, &mut buffer).with_context(|| format!("reading {}", path.display()))? {
            Some(Ok(line)) => line,
            Some(Err(problem)) => anyhow::bail!("the bundle's header {problem}"),
            None => anyhow::bail!("the bundle is empty"),
        };
    let header = BundleHeader::parse(&header_line)?;
    // A header announcing an empty ledger expects no entry at all.
    options.expected_head = Some(
        header
            .head
            .as_ref()
            .map_or((0, Digest::GENESIS), |h| (h.seq, h.chain_hash)),
    );

    let (receiver, reader_thread) = spawn_batch_reader(reader, buffer);
    let bar = progress_bar(header.entries, "verifying", quiet);
    let mut verifier = Verifier::new(options);
    let mut leaves = Vec::new();
    for batch in receiver.iter() {
        let batch = batch.with_context(|| format!("reading {}", path.display()))?;
        let (entries, unreadable) = parse_batch(&batch);
        if keep_leaves {
            leaves.extend(
                entries
                    .iter()
                    .map(|e| e.chain_hash.parse().map_or(Hash([0; 32]), |d| leaf_hash(&d))),
            );
        }
        if verifier.check(&entries)
            && let Some(message) = unreadable
        {
            let line = verifier.entries_checked() + 2;
            verifier.fail_unreadable(format!("line {line}: {message}"));
        }
        bar.set_position(verifier.entries_checked());
        if verifier.is_invalid() {
            break;
        }
    }
    drop(receiver);
    let _ = reader_thread.join();
    bar.finish_and_clear();
    let report = verifier.finish();
    // Only entries that verified count: a checkpoint is compared with the valid prefix.
    leaves.truncate(report.entries_checked as usize);
    Ok((report, leaves))
}

/// Batches of lines read from `reader`.
type Batches = std::sync::mpsc::Receiver<std::io::Result<Vec<Line>>>;

/// A reader thread that splits the rest of the bundle into batches of [`BUNDLE_BATCH`] lines while the
/// verifier works on the previous batch; the channel holds one batch. It stops after an unreadable line,
/// at the end of the file, at an I/O error (sent as the last item) or when the receiver is dropped.
fn spawn_batch_reader(mut reader: BufReader<File>, mut buffer: Vec<u8>) -> (Batches, std::thread::JoinHandle<()>) {
    let (batches, receiver) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<Line>>>(1);
    let reader_thread = std::thread::spawn(move || {
        loop {
            let mut batch = Vec::with_capacity(BUNDLE_BATCH);
            let mut done = false;
            while batch.len() < BUNDLE_BATCH {
                match next_line(&mut reader, &mut buffer) {
                    Ok(Some(line)) => {
                        // Verification stops at an unreadable line: nothing after it is needed.
                        done = line.is_err();
                        batch.push(line);
                        if done {
                            break;
                        }
                    }
                    Ok(None) => {
                        done = true;
                        break;
                    }
                    Err(error) => {
                        let _ = batches.send(Err(error));
                        return;
                    }
                }
            }
            if batches.send(Ok(batch)).is_err() || done {
                break;
            }
        }
    });
    (receiver, reader_thread)
}

/// Parses a batch of lines on all cores: the entries up to the first unreadable line, and why that line
/// is unreadable (it is then the first invalid entry).
fn parse_batch(batch: &[Line]) -> (Vec<Entry>, Option<String>) {
    // Parsing is as costly as hashing: do it on all cores too.
    let parsed: Vec<Result<Entry, String>> = batch
        .par_iter()
        .map(|line| {
            line.as_ref()
                .map_err(Clone::clone)
                .and_then(|l| bundle::parse_entry_line(l).map_err(|e| e.to_string()))
        })
        .collect();
    // Entries up to the first unreadable line are checked; that line is then the first invalid entry.
    let mut entries = Vec::with_capacity(parsed.len());
    let mut unreadable = None;
    for line in parsed {
        match line {
            Ok(entry) => entries.push(entry),
            Err(message) => {
                unreadable = Some(message);
                break;
            }
        }
    }
    (entries, unreadable)
}

/// The gateway's public key, if its signing key is available here (never generated by verify).
fn local_signing_key(args: &VerifyArgs) -> anyhow::Result<Option<LedgerPublicKey>> {
    Ok(match crate::keyfile::source(&args.database, &args.key) {
        crate::keyfile::KeySource::Env => {
            let pem = std::env::var("DOCKETOPS_SIGNING_KEY").context("DOCKETOPS_SIGNING_KEY is not valid UTF-8")?;
            Some(
                ledger_core::LedgerSigningKey::from_pkcs8_pem(&pem)
                    .context("DOCKETOPS_SIGNING_KEY")?
                    .public_key(),
            )
        }
        crate::keyfile::KeySource::File(path) if path.exists() => Some(crate::keyfile::read(&path)?.public_key()),
        crate::keyfile::KeySource::File(_) => None,
    })
}

/// One line of a bundle: its text, or why it cannot be text.
type Line = Result<String, String>;

/// The longest line read: the largest payload an entry may hold plus room for its other fields. A
/// longer line is refused without being held in memory whole.
const MAX_LINE_BYTES: u64 = ledger_core::entry::MAX_PAYLOAD_BYTES as u64 + 64 * 1024;

/// Reads the next line (without its line ending); None at the end of the file. A line that is not
/// UTF-8 or is too long is returned as an error for the verifier to report, not as an I/O failure.
fn next_line(reader: &mut impl BufRead, buffer: &mut Vec<u8>) -> std::io::Result<Option<Line>> {
    buffer.clear();
    let mut limited = std::io::Read::take(reader, MAX_LINE_BYTES + 1);
    let read = limited.read_until(b'\n', buffer)?;
    if read == 0 {
        return Ok(None);
    }
    if buffer.last() == Some(&b'\n') {
        buffer.pop();
        if buffer.last() == Some(&b'\r') {
            buffer.pop();
        }
    } else if read as u64 > MAX_LINE_BYTES {
        return Ok(Some(Err(format!("is longer than {MAX_LINE_BYTES} bytes"))));
    }
    Ok(Some(
        String::from_utf8(buffer.clone()).map_err(|_| "is not UTF-8 text".to_string()),
    ))
}

pub(crate) fn print_report(report: &VerifyReport, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match write_report(&mut out, report, json) {
        // A closed pipe (`| head`) is not an error of the verification.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn write_report(out: &mut impl Write, report: &VerifyReport, json: bool) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{}", serde_json::to_string_pretty(report)?);
    }
    match (&report.first_invalid, &report.head) {
        (None, Some(head)) => writeln!(
            out,
            "valid: {} entries checked, head seq {} {}",
            report.entries_checked, head.seq, head.chain_hash
        )?,
        (None, None) => writeln!(out, "valid: the ledger is empty")?,
        (Some(invalid), _) => {
            let reason = serde_json::to_value(invalid.reason)?;
            let reason = reason.as_str().unwrap_or("?");
            writeln!(out, "INVALID at seq {}: {} ({reason})", invalid.seq, invalid.message)?;
            writeln!(out, "{} entries before it verified", report.entries_checked)?;
        }
    }
    for key in &report.keys {
        let retired = key
            .retired_seq
            .map_or_else(|| "active".to_string(), |seq| format!("retired at seq {seq}"));
        writeln!(
            out,
            "key {} ({}), introduced at seq {}, {retired}, signed {} entries",
            key.info.key_id, key.info.public_key, key.introduced_seq, key.entries_signed
        )?;
    }
    Ok(())
}

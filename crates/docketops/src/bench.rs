//! `docketops bench`: the ledger's figures on this machine, each next to the physical limit measured
//! in the same run (raw Ed25519 signing), so the ratio is visible. The transparency log's figures are in
//! `bench_tlog.rs` (the tree's cost and proofs served) and `bench_tlog_latency.rs` (checkpoint latency).

use domain::{ActionType, EntryKind};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use ledger_core::bundle::{self, BUNDLE_FORMAT, BundleHead, BundleHeader};
use ledger_core::tlog::checkpoint::{self, Checkpoint, WitnessKey, WitnessSigner};
use ledger_core::tlog::proofs::{self, TileSource};
use ledger_core::tlog::receipt::Receipt;
use ledger_core::tlog::{TreeEdge, leaf_hash};
use ledger_core::{ChainHead, LedgerSigningKey, NewEvent, PreparedEvent, VerifyOptions};
use rayon::prelude::*;
use serde_json::json;
use storage::{AppendConfig, Ledger, Store};

use crate::commands::verify::verify_bundle;

#[path = "bench_tlog.rs"]
mod tlog;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// PostgreSQL server to benchmark against; a scratch database is created there and dropped after.
    #[arg(
        long,
        env = "DOCKETOPS_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres_url: String,
    /// Skip the PostgreSQL measurements.
    #[arg(long)]
    pub skip_postgres: bool,
    /// Appends per measurement with 64 concurrent writers (1 writer does a tenth).
    #[arg(long, default_value_t = 60_000)]
    pub appends: u64,
    /// Ledger sizes for the verifier memory check (peak memory must not grow with size).
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    pub memory_sizes: Vec<u64>,
    /// Scratch directory for SQLite files and bundles [default: a temporary directory].
    #[arg(long)]
    pub scratch_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub tlog: tlog::TlogBenchArgs,
}

/// A payload shaped like a real action entry (~350 bytes canonical).
pub(crate) fn sample_event(i: u64) -> NewEvent {
    NewEvent::new(
        EntryKind::ActionRequested.as_str(),
        "agt_01hzbenchmarkagent0000000",
        json!({
            "action_type": ActionType::Scale.as_str(),
            "namespace": "staging",
            "resource_kind": "Deployment",
            "resource_name": format!("web-api-{}", i % 97),
            "parameters": {"replicas": (i % 9) + 1},
            "justification": "Scale up for load test",
            "request_digest": "sha256:9f6c1b7e3c4d2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f",
            "client": {"user_agent": "docketops-bench/1", "source_ip": "127.0.0.1"},
        }),
    )
    .with_action(format!("act_{i:016x}"))
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let scratch = match &args.scratch_dir {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    let cores = rayon::current_num_threads();
    println!(
        "DocketOps ledger benchmark ({cores} cores, release build: {})",
        !cfg!(debug_assertions)
    );
    println!();

    let raw = tokio::task::spawn_blocking(raw_ed25519).await?;
    print_raw_rates(&raw);
    let (verify_targets, scratch_databases) = durable_appends(&args, scratch.path(), &raw).await?;
    verification(&verify_targets, &raw).await?;
    for name in scratch_databases {
        storage::drop_postgres_database(&args.postgres_url, &name).await?;
    }
    verifier_memory(&args.memory_sizes, scratch.path(), &raw).await?;
    if !args.tlog.skip_tlog {
        offline_receipts(args.tlog.receipts).await?;
    }
    let postgres = (!args.skip_postgres).then_some(args.postgres_url.as_str());
    tlog::run(&args.tlog, args.appends, postgres, scratch.path()).await?;
    Ok(ExitCode::SUCCESS)
}

fn print_raw_rates(raw: &RawRates) {
    println!("Physical limit (raw ed25519-dalek, no ledger):");
    println!("  sign, 1 core                 {:>10.0} /s", raw.sign_one_core);
    println!("  sign, all cores              {:>10.0} /s", raw.sign_all_cores);
    println!("  verify (strict), all cores   {:>10.0} /s", raw.verify_all_cores);
    println!(
        "  batch verify (256), all cores {:>10.0} /s",
        raw.batch_verify_all_cores
    );
    println!();
}

/// Append rates with 1 and 64 writers on SQLite (files in `scratch`) and PostgreSQL. Returns the ledgers
/// to verify next (backend name, URL) and the scratch PostgreSQL databases to drop after.
async fn durable_appends(
    args: &BenchArgs,
    scratch: &Path,
    raw: &RawRates,
) -> anyhow::Result<(Vec<(&'static str, String)>, Vec<String>)> {
    println!("Durable appends (group commit; each append acknowledged after its transaction commits):");
    let mut verify_targets = Vec::new();
    let sqlite_urls: Vec<String> = ["1", "64"]
        .iter()
        .map(|w| format!("sqlite://{}", scratch.join(format!("bench-{w}.db")).display()))
        .collect();
    for (writers, url) in [1u64, 64].into_iter().zip(&sqlite_urls) {
        let rate = append_rate(url, writers, appends_for(args.appends, writers)).await?;
        print_rate("SQLite", writers, rate, raw);
    }
    verify_targets.push(("SQLite", sqlite_urls[1].clone()));
    let mut scratch_databases = Vec::new();
    if !args.skip_postgres {
        for writers in [1u64, 64] {
            let name = format!("docketops_bench_{}_{writers}", std::process::id());
            let url = storage::create_postgres_database(&args.postgres_url, &name).await?;
            let rate = append_rate(&url, writers, appends_for(args.appends, writers)).await?;
            print_rate("PostgreSQL", writers, rate, raw);
            scratch_databases.push(name);
            if writers == 64 {
                verify_targets.push(("PostgreSQL", url));
            }
        }
    }
    println!();
    Ok((verify_targets, scratch_databases))
}

/// Verifies each ledger of `targets` (backend name, URL) from its database.
async fn verification(targets: &[(&str, String)], raw: &RawRates) -> anyhow::Result<()> {
    println!("Verification (canonical form, hashes, links, signatures; each signature verified strictly):");
    for (name, url) in targets {
        let store = Store::connect(url).await?;
        let started = Instant::now();
        let report = storage::verify_ledger(&store, VerifyOptions::default(), |_| {}).await?;
        let rate = report.entries_checked as f64 / started.elapsed().as_secs_f64();
        anyhow::ensure!(
            report.valid,
            "the benchmark ledger does not verify: {:?}",
            report.first_invalid
        );
        println!(
            "  from {name:<10}              {:>10.0} entries/s ({} entries; {:.2}x raw strict verify, {:.2}x raw batch)",
            rate,
            report.entries_checked,
            rate / raw.verify_all_cores,
            rate / raw.batch_verify_all_cores
        );
        store.close().await;
    }
    Ok(())
}

/// Verifies bundles of each size in `sizes` (written to `scratch`) and reports the verifier's peak memory.
async fn verifier_memory(sizes: &[u64], scratch: &Path, raw: &RawRates) -> anyhow::Result<()> {
    for &size in sizes {
        let path = scratch.join(format!("bench-{size}.jsonl"));
        let write_path = path.clone();
        tokio::task::spawn_blocking(move || write_bundle_file(&write_path, size)).await??;
        let measured = tokio::task::spawn_blocking(move || -> anyhow::Result<(f64, u64, u64)> {
            let baseline = reset_peak_rss();
            let started = Instant::now();
            let report = verify_bundle(&path, VerifyOptions::default(), true)?;
            let elapsed = started.elapsed();
            anyhow::ensure!(report.valid && report.entries_checked == size, "bundle did not verify");
            let _ = std::fs::remove_file(&path);
            Ok((size as f64 / elapsed.as_secs_f64(), baseline, peak_rss()))
        })
        .await??;
        let (rate, baseline, peak) = measured;
        println!(
            "  bundle of {size:>9} entries    {:>10.0} entries/s ({:.2}x raw strict verify), peak memory {:.1} MiB ({:+.1} \
             MiB over the {:.1} MiB before)",
            rate,
            rate / raw.verify_all_cores,
            mib(peak),
            mib(peak.saturating_sub(baseline)),
            mib(baseline)
        );
    }
    Ok(())
}

/// Builds and verifies `receipts` receipts offline, with the log's signature alone and with two cosignatures.
async fn offline_receipts(receipts: usize) -> anyhow::Result<()> {
    let rates = tokio::task::spawn_blocking(move || receipt_rates(receipts)).await??;
    println!();
    println!("Receipts verified offline (Receipt::parse + verify; ledger-core only, all cores, {receipts} receipts):");
    println!(
        "  raw strict verify, just before           {:>10.0} /s",
        rates.raw_verify
    );
    for (what, rate, signatures) in [
        ("log's signature", rates.log_only, 2.0),
        ("+ 2 cosignatures, quorum 2", rates.cosigned, 4.0),
    ] {
        println!(
            "  receipt, {what:<27}     {rate:>10.0} /s ({signatures} signatures: {:.2}x raw verify / {signatures})",
            rate * signatures / rates.raw_verify
        );
    }
    Ok(())
}

fn appends_for(total: u64, writers: u64) -> u64 {
    if writers == 1 { (total / 10).max(100) } else { total }
}

fn print_rate(backend: &str, writers: u64, rate: f64, raw: &RawRates) {
    println!(
        "  {backend:<10} {writers:>2} writer{}          {rate:>10.0} appends/s ({:.2}x raw signing on 1 core, {:.2}x on all cores)",
        if writers == 1 { " " } else { "s" },
        rate / raw.sign_one_core,
        rate / raw.sign_all_cores
    );
}

/// Appends `total` entries with `writers` concurrent callers on a fresh ledger; appends per second.
async fn append_rate(url: &str, writers: u64, total: u64) -> anyhow::Result<f64> {
    let store = Store::connect(url).await?;
    store.migrate().await?;
    let ledger = Ledger::start(store.clone(), LedgerSigningKey::generate(), AppendConfig::default());
    ledger.initialize().await?;
    let elapsed = append_load(&ledger, writers, total, 0).await?;
    let head = store.head().await?.map_or(0, |h| h.seq);
    anyhow::ensure!(head == total + 1, "expected {} entries, found {head}", total + 1);
    store.close().await;
    Ok(total as f64 / elapsed.as_secs_f64())
}

/// Appends `total` sample events (numbered from `first`) with `writers` concurrent callers; the time taken.
pub(crate) async fn append_load(ledger: &Ledger, writers: u64, total: u64, first: u64) -> anyhow::Result<Duration> {
    let remaining = Arc::new(AtomicU64::new(total));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..writers {
        let (ledger, remaining) = (ledger.clone(), Arc::clone(&remaining));
        tasks.spawn(async move {
            while let Ok(previous) = remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            {
                ledger.append(sample_event(first + previous)).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(started.elapsed())
}

struct RawRates {
    sign_one_core: f64,
    sign_all_cores: f64,
    verify_all_cores: f64,
    batch_verify_all_cores: f64,
}

/// Raw ed25519-dalek on 64-byte messages (the size of a ledger signature message's variable part).
fn raw_ed25519() -> RawRates {
    let key = SigningKey::from_bytes(&[42; 32]);
    let public: VerifyingKey = key.verifying_key();
    let messages: Vec<[u8; 64]> = (0..20_000u32)
        .map(|i| {
            let mut m = [0u8; 64];
            m[..4].copy_from_slice(&i.to_be_bytes());
            m
        })
        .collect();
    let rate = |n: usize, elapsed: Duration| n as f64 / elapsed.as_secs_f64();

    let started = Instant::now();
    let signatures: Vec<Signature> = messages[..5_000].iter().map(|m| key.sign(m)).collect();
    let sign_one_core = rate(signatures.len(), started.elapsed());

    let started = Instant::now();
    let signatures: Vec<Signature> = messages.par_iter().map(|m| key.sign(m)).collect();
    let sign_all_cores = rate(signatures.len(), started.elapsed());

    let started = Instant::now();
    let ok = messages
        .par_iter()
        .zip(&signatures)
        .filter(|(m, s)| public.verify_strict(&m[..], s).is_ok())
        .count();
    let verify_all_cores = rate(ok, started.elapsed());

    let started = Instant::now();
    let ok: usize = messages
        .par_chunks(256)
        .zip(signatures.par_chunks(256))
        .map(|(m, s)| {
            let m: Vec<&[u8]> = m.iter().map(|m| &m[..]).collect();
            let keys = vec![public; m.len()];
            ed25519_dalek::verify_batch(&m, s, &keys).map_or(0, |_| m.len())
        })
        .sum();
    let batch_verify_all_cores = rate(ok, started.elapsed());
    RawRates {
        sign_one_core,
        sign_all_cores,
        verify_all_cores,
        batch_verify_all_cores,
    }
}

struct ReceiptRates {
    raw_verify: f64,
    log_only: f64,
    cosigned: f64,
}

struct Tiles(HashMap<(u8, u64), Vec<u8>>);

impl TileSource for Tiles {
    fn tile(&self, level: u8, index: u64) -> Option<&[u8]> {
        self.0.get(&(level, index)).map(Vec::as_slice)
    }
}

/// Builds the receipts of a ledger of `n` entries (ledger-core only) under one checkpoint cosigned by two
/// witnesses, then times raw strict verification and the receipts' parse + verify, all cores each.
fn receipt_rates(n: usize) -> anyhow::Result<ReceiptRates> {
    let key = LedgerSigningKey::generate();
    let now = time::OffsetDateTime::now_utc();
    let events: Vec<PreparedEvent> = (0..n as u64)
        .into_par_iter()
        .map(|i| {
            let event = match i {
                0 => NewEvent::genesis(&key.public_key(), "system"),
                i => sample_event(i),
            };
            PreparedEvent::prepare(event, now).expect("sample events are valid")
        })
        .collect();
    let entries = ledger_core::seal(&ChainHead::EMPTY, events, &key);
    let leaves = entries
        .iter()
        .map(|e| e.chain_hash.parse().map(|d| leaf_hash(&d)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| anyhow::anyhow!("an unreadable chain hash"))?;
    let mut edge = TreeEdge::empty();
    let tiles = Tiles(
        edge.append(leaves)
            .into_iter()
            .map(|w| ((w.level, w.index), w.data))
            .collect(),
    );
    let cp = Checkpoint {
        origin: "bench.docketops/receipts".into(),
        size: edge.size(),
        root: edge.root(),
    };
    let signers: Vec<WitnessSigner> = (1..=2u8)
        .map(|i| WitnessSigner::new(&format!("witness{i}.bench.docketops"), SigningKey::from_bytes(&[i; 32])))
        .collect::<Result<_, _>>()?;
    let lines: Vec<String> = signers.iter().map(|w| w.cosign(&cp.body(), 1_800_000_000)).collect();
    let note = checkpoint::add_signature_lines(&cp.sign(&key)?, &lines);
    let texts: Vec<String> = entries
        .into_par_iter()
        .map(|entry| {
            let index = entry.seq - 1;
            let proof = proofs::inclusion_proof(cp.size, index, &tiles).expect("every leaf is in the tree");
            let checkpoint = note.clone();
            Receipt {
                entry,
                index,
                proof,
                checkpoint,
            }
            .to_text()
        })
        .collect();
    let raw_verify = raw_ed25519().verify_all_cores;
    let keys = [key.public_key()];
    let witnesses: Vec<WitnessKey> = signers.iter().map(|w| w.public().clone()).collect();
    let rate = |witnesses: &[WitnessKey], quorum: usize| -> anyhow::Result<f64> {
        let started = Instant::now();
        let ok = texts
            .par_iter()
            .filter(|t| Receipt::parse(t).is_ok_and(|r| r.verify(&keys, witnesses, quorum).is_ok()))
            .count();
        anyhow::ensure!(ok == texts.len(), "{} receipts did not verify", texts.len() - ok);
        Ok(ok as f64 / started.elapsed().as_secs_f64())
    };
    Ok(ReceiptRates {
        raw_verify,
        log_only: rate(&[], 0)?,
        cosigned: rate(&witnesses, 2)?,
    })
}

/// Inclusion proofs with the root, from the tiles of a tree of `size` leaves held in memory (no database),
/// on all cores: the hashing a proof costs, the bound for serving them. Proofs per second.
pub(crate) fn memory_proof_rate(size: u64, proofs: u64) -> anyhow::Result<f64> {
    let mut edge = TreeEdge::empty();
    let leaves = (0..size).map(|i| leaf_hash(&ledger_core::Digest::of(&i.to_be_bytes())));
    let tiles = Tiles(
        edge.append(leaves)
            .into_iter()
            .map(|w| ((w.level, w.index), w.data))
            .collect(),
    );
    let started = Instant::now();
    // The root once, as the store keeps roots by size: the bound is the proofs' own hashing.
    proofs::root_at(size, &tiles)?;
    let made = (0..proofs)
        .into_par_iter()
        .filter(|i| {
            let index = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % size;
            proofs::inclusion_proof(size, index, &tiles).is_ok()
        })
        .count();
    anyhow::ensure!(made as u64 == proofs, "{} proofs failed", proofs - made as u64);
    Ok(proofs as f64 / started.elapsed().as_secs_f64())
}

/// Writes a valid bundle of `size` entries without a database (sealed in batches, streamed out).
fn write_bundle_file(path: &Path, size: u64) -> anyhow::Result<()> {
    let key = LedgerSigningKey::generate();
    let now = time::OffsetDateTime::now_utc();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    // The header needs the head: seal everything once to learn it would double the work, so write a
    // placeholder header and rewrite it (same length) at the end.
    let placeholder = header_line(size, None, &key);
    writeln!(out, "{placeholder}")?;
    let mut head = ChainHead::EMPTY;
    let mut next = 0u64;
    while next < size {
        let count = (size - next).min(4096);
        let events: Vec<PreparedEvent> = (next..next + count)
            .into_par_iter()
            .map(|i| {
                let event = if i == 0 {
                    NewEvent::genesis(&key.public_key(), "system")
                } else {
                    sample_event(i)
                };
                PreparedEvent::prepare(event, now).expect("sample events are valid")
            })
            .collect();
        let entries = ledger_core::seal(&head, events, &key);
        for entry in &entries {
            out.write_all(bundle::entry_line(entry).as_bytes())?;
            out.write_all(b"\n")?;
        }
        head = ledger_core::chain::head_of(entries.last().expect("non-empty")).expect("sealed entries parse");
        next += count;
    }
    out.flush()?;
    drop(out);
    let header = header_line(
        size,
        Some(BundleHead {
            seq: head.seq,
            chain_hash: head.chain_hash,
        }),
        &key,
    );
    anyhow::ensure!(header.len() == placeholder.len(), "header length changed");
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all_at(header.as_bytes(), 0)?;
    Ok(())
}

fn header_line(size: u64, head: Option<BundleHead>, key: &LedgerSigningKey) -> String {
    let head = head.unwrap_or(BundleHead {
        seq: size,
        chain_hash: ledger_core::Digest::GENESIS,
    });
    BundleHeader {
        format: BUNDLE_FORMAT.into(),
        created_at: ledger_core::entry::format_timestamp(time::OffsetDateTime::now_utc()),
        entries: size,
        head: Some(head),
        keys: vec![key.public_key().info()],
    }
    .to_line()
}

/// Resets the kernel's peak-RSS mark (VmHWM) to the current RSS and returns that, in bytes.
fn reset_peak_rss() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_field("VmRSS")
}

fn peak_rss() -> u64 {
    status_field("VmHWM")
}

fn status_field(name: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

//! `docketops bench`, the transparency log's checkpoint latency: how long an entry waits, after its append
//! is acknowledged, for a checkpoint cosigned by two real witnesses (`docketops witness serve`, started
//! from this executable), at each checkpoint interval, with 64 writers appending meanwhile.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use gateway::{Transparency, TransparencyConfig, WitnessEndpoint};
use ledger_core::LedgerSigningKey;
use ledger_core::tlog::checkpoint::{self, WitnessKey};
use storage::{AppendConfig, Ledger, Store};

use super::{ChildGuard, Scratch, TlogBenchArgs, copy_key, discard, free_port, spawn_self, wait_ready};
use crate::bench::sample_event;
use crate::bench_gateway::Percentiles;

/// Two `docketops witness serve` processes following `origins`, all signed by `key`.
async fn start_witnesses(
    dir: &Path,
    origins: &[String],
    key: &LedgerSigningKey,
) -> anyhow::Result<(Vec<ChildGuard>, Vec<WitnessEndpoint>)> {
    let http = reqwest::Client::new();
    let (mut children, mut endpoints) = (Vec::new(), Vec::new());
    for i in 1..=2 {
        let name = format!("witness{i}.bench.docketops");
        let key_file = dir.join(format!("witness{i}/key.pem"));
        let keygen = Command::new(std::env::current_exe()?)
            .args(["witness", "keygen", "--name", &name, "--key-file"])
            .arg(&key_file)
            .output()?;
        ensure!(
            keygen.status.success(),
            "witness keygen: {}",
            String::from_utf8_lossy(&keygen.stderr)
        );
        let vkey = WitnessKey::parse(String::from_utf8(keygen.stdout)?.trim())?;
        let port = free_port()?;
        let mut config = format!(
            "name = {name:?}\nkey_file = {:?}\ndatabase = {:?}\nlisten = \"127.0.0.1:{port}\"\n",
            key_file.display().to_string(),
            dir.join(format!("witness{i}/witness.db")).display().to_string(),
        );
        for origin in origins {
            let log_key = checkpoint::log_verifier_key(origin, &key.public_key());
            config.push_str(&format!("\n[[logs]]\norigin = {origin:?}\nkeys = [{log_key:?}]\n"));
        }
        let config_file = dir.join(format!("witness{i}.toml"));
        std::fs::write(&config_file, config)?;
        let log = dir.join(format!("witness{i}.log"));
        let config_file = config_file.display().to_string();
        let mut child = spawn_self(&["--config", &config_file, "witness", "serve"], &log, &[])?;
        let url = format!("http://127.0.0.1:{port}");
        wait_ready(&http, &format!("{url}/healthz"), None, &mut child, &log).await?;
        children.push(child);
        endpoints.push(WitnessEndpoint { url, key: vkey });
    }
    Ok((children, endpoints))
}

pub(super) async fn latencies(
    args: &TlogBenchArgs,
    backends: &[(&str, Option<&str>)],
    scratch: &mut Scratch<'_>,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(scratch.dir)?;
    let key = LedgerSigningKey::generate();
    let origins: Vec<String> = (0..16).map(|i| format!("bench.docketops/run{i}")).collect();
    let (_witnesses, endpoints) = start_witnesses(dir.path(), &origins, &key).await?;
    let mut origins = origins.into_iter();
    println!();
    println!(
        "Checkpoint latency: entry committed (append acknowledged) -> covered by a checkpoint with both witnesses' \
         cosignatures stored (2 `docketops witness serve`, quorum 2; 64 writers appending for {} s, an entry sampled \
         every 50 ms, polled every 10 ms):",
        args.latency_seconds
    );
    for &(name, pg) in backends {
        let mut intervals = args.checkpoint_intervals_ms.clone();
        let mut i = 0;
        while let Some(&interval) = intervals.get(i) {
            let (url, origin) = (scratch.fresh(pg).await?, origins.next().context("too many runs")?);
            let run = checkpoint_latency(&url, &key, origin, &endpoints, interval, args.latency_seconds).await?;
            discard(&url, pg).await?;
            let (cosigned, signed) = (Percentiles::of(&run.cosigned), Percentiles::of(&run.signed));
            let max = run.cosigned.iter().max().copied().unwrap_or_default().as_secs_f64() * 1e3;
            println!(
                "  {name:<10} every {interval:>4} ms  p50 {:>5.0} ms, p99 {:>5.0} ms (max {max:.0} ms, {} samples, {} \
                 never covered); signed, before cosignatures: p50 {:.0} ms, p99 {:.0} ms; {} checkpoints; {:.0} \
                 appends/s meanwhile",
                cosigned.p50_ms(),
                cosigned.p99_ms(),
                run.cosigned.len(),
                run.uncovered,
                signed.p50_ms(),
                signed.p99_ms(),
                run.checkpoints,
                run.append_rate
            );
            if interval == 1000 && cosigned.p99_ms() > 1500.0 && !intervals.contains(&250) {
                println!("    p99 over 1.5 s with checkpoints every second: 250 ms measured too");
                intervals.push(250);
            }
            i += 1;
        }
    }
    Ok(())
}

struct LatencyRun {
    cosigned: Vec<Duration>,
    signed: Vec<Duration>,
    uncovered: usize,
    checkpoints: usize,
    append_rate: f64,
}

/// One latency measurement on a fresh ledger with its own origin.
async fn checkpoint_latency(
    url: &str,
    key: &LedgerSigningKey,
    origin: String,
    witnesses: &[WitnessEndpoint],
    interval_ms: u64,
    seconds: u64,
) -> anyhow::Result<LatencyRun> {
    let store = Store::connect(url).await?;
    store.migrate().await?;
    let ledger = Ledger::start(store.clone(), copy_key(key), AppendConfig::default());
    ledger.initialize().await?;
    let config = TransparencyConfig {
        origin,
        interval: Duration::from_millis(interval_ms),
        witnesses: witnesses.to_vec(),
        quorum: 2,
        public: false,
    };
    let names: Vec<String> = witnesses.iter().map(|w| w.key.name.clone()).collect();
    let checkpointer = tokio::spawn(Arc::new(Transparency::new(store.clone(), copy_key(key), config)).run());
    let (stop, written) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (ledger, stop, written) = (ledger.clone(), Arc::clone(&stop), Arc::clone(&written));
        load.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = written.fetch_add(1, Ordering::Relaxed);
                ledger.append(sample_event(n)).await?;
            }
            anyhow::Ok(())
        });
    }
    // Sampled entries, appended by tasks of their own: (seq, when the append was acknowledged).
    let samples: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let mut sampling = tokio::task::JoinSet::new();
    let (mut signed, mut cosigned) = (vec![(0, Instant::now())], vec![(0, Instant::now())]);
    let started = Instant::now();
    let mut poll = tokio::time::interval(Duration::from_millis(10));
    let mut append_rate = 0.0;
    for tick in 0u64.. {
        poll.tick().await;
        let elapsed = started.elapsed();
        if elapsed < Duration::from_secs(seconds) {
            if tick % 5 == 0 {
                let (ledger, samples) = (ledger.clone(), Arc::clone(&samples));
                sampling.spawn(async move {
                    let entry = ledger.append(sample_event(u64::MAX - tick)).await?;
                    samples.lock().expect("samples lock").push((entry.seq, Instant::now()));
                    anyhow::Ok(())
                });
            }
        } else if !stop.swap(true, Ordering::Relaxed) {
            append_rate = written.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64();
        }
        while let Some(done) = sampling.try_join_next() {
            done??;
        }
        for (list, size) in [
            (&mut signed, store.latest_checkpoint().await?),
            (&mut cosigned, store.latest_cosigned_checkpoint(&names, 2).await?),
        ] {
            let size = size.map_or(0, |c| c.size as u64);
            if size > list.last().map_or(0, |s| s.0) {
                list.push((size, Instant::now()));
            }
        }
        let last = samples.lock().expect("samples lock").iter().map(|s| s.0).max();
        let covered = last.is_none_or(|seq| seq <= cosigned.last().map_or(0, |c| c.0));
        let overtime = elapsed > Duration::from_secs(seconds + 15);
        if stop.load(Ordering::Relaxed) && sampling.is_empty() && (covered || overtime) {
            break;
        }
    }
    while let Some(done) = load.join_next().await {
        done??;
    }
    checkpointer.abort();
    drop(ledger);
    store.close().await;
    let samples = std::mem::take(&mut *samples.lock().expect("samples lock"));
    let waits = |covers: &[(u64, Instant)]| -> Vec<Duration> {
        let wait = |&(seq, at): &(u64, Instant)| {
            let cover = covers.get(covers.partition_point(|c| c.0 < seq))?;
            Some(cover.1.saturating_duration_since(at))
        };
        samples.iter().filter_map(wait).collect()
    };
    let cosigned = waits(&cosigned);
    Ok(LatencyRun {
        uncovered: samples.len() - cosigned.len(),
        cosigned,
        signed: waits(&signed),
        checkpoints: signed.len() - 1,
        append_rate,
    })
}

//! `docketops bench`, the transparency log: what extending the tree in each append transaction costs
//! (appends/s with and without it, interleaved in one run, on fresh ledgers and over a history) and
//! inclusion proofs served (from the store and over HTTP from `docketops serve`). How long an entry waits
//! for a checkpoint cosigned by two real witnesses (`docketops witness serve`) is in
//! `bench_tlog_latency.rs`; receipts verified offline are in `bench.rs`, next to raw verification.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Args;
use ledger_core::tlog::proofs;
use ledger_core::tlog::{hash_from_base64, leaf_hash};
use ledger_core::{Digest, LedgerSigningKey};
use storage::{AppendConfig, Ledger, Store};

use super::append_load;

#[path = "bench_tlog_latency.rs"]
mod latency;

#[derive(Debug, Args)]
pub struct TlogBenchArgs {
    /// Skip the transparency log's measurements.
    #[arg(long)]
    pub skip_tlog: bool,
    /// Rounds of the tree's cost: each appends without the tree, then with it (64 writers, --appends).
    #[arg(long, default_value_t = 3)]
    pub tree_rounds: usize,
    /// Entries in the ledger before the rounds over a history, which then serves the proofs (0: no
    /// history rounds, proofs on the last fresh ledger).
    #[arg(long, default_value_t = 100_000)]
    pub tree_history: u64,
    /// Seconds of 64 writers appending per checkpoint-latency measurement (0 skips them).
    #[arg(long, default_value_t = 20)]
    pub latency_seconds: u64,
    /// Checkpoint intervals to measure latency at, in ms (250 is added when the p99 at 1000 exceeds 1.5 s).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    pub checkpoint_intervals_ms: Vec<u64>,
    /// Seconds per inclusion-proof measurement.
    #[arg(long, default_value_t = 5)]
    pub proof_seconds: u64,
    /// Concurrent inclusion-proof requests.
    #[arg(long, default_value_t = 64)]
    pub proof_tasks: usize,
    /// Skip the proofs over HTTP (they start `docketops serve` on the history's database).
    #[arg(long)]
    pub skip_http: bool,
    /// Receipts built and verified offline.
    #[arg(long, default_value_t = 20_000)]
    pub receipts: usize,
}

/// Scratch databases: SQLite files in `dir`, or PostgreSQL databases through the `postgres` admin URL.
struct Scratch<'a> {
    dir: &'a Path,
    count: usize,
}

impl Scratch<'_> {
    async fn fresh(&mut self, postgres: Option<&str>) -> anyhow::Result<String> {
        self.count += 1;
        let Some(admin) = postgres else {
            return Ok(format!(
                "sqlite://{}",
                self.dir.join(format!("tlog-{}.db", self.count)).display()
            ));
        };
        let name = format!("docketops_bench_tlog_{}_{}", std::process::id(), self.count);
        Ok(storage::create_postgres_database(admin, &name).await?)
    }
}

/// Removes a scratch database (its stores closed).
async fn discard(url: &str, postgres: Option<&str>) -> anyhow::Result<()> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    } else if let Some(admin) = postgres {
        let name = url.rsplit('/').next().and_then(|n| n.split('?').next());
        storage::drop_postgres_database(admin, name.unwrap_or_default()).await?;
    }
    Ok(())
}

fn copy_key(key: &LedgerSigningKey) -> LedgerSigningKey {
    LedgerSigningKey::from_pkcs8_pem(&key.to_pkcs8_pem().expect("a key encodes")).expect("a key decodes")
}

fn tree_config(integrate_tree: bool) -> AppendConfig {
    AppendConfig {
        integrate_tree,
        ..AppendConfig::default()
    }
}

pub(crate) async fn run(args: &TlogBenchArgs, appends: u64, pg: Option<&str>, dir: &Path) -> anyhow::Result<()> {
    if args.skip_tlog {
        return Ok(());
    }
    let mut scratch = Scratch { dir, count: 0 };
    let backends: Vec<(&str, Option<&str>)> = [("SQLite", None), ("PostgreSQL", pg)]
        .into_iter()
        .filter(|&(name, pg)| name == "SQLite" || pg.is_some())
        .collect();
    println!();
    println!(
        "Transparency log: appends/s with 64 writers without the tree (integrate_tree = false) and with it, \
         interleaved ({} rounds of {appends} appends):",
        args.tree_rounds
    );
    for &(name, pg) in &backends {
        let mut rates = [Vec::new(), Vec::new()];
        for _ in 0..args.tree_rounds {
            for (i, integrate) in [false, true].into_iter().enumerate() {
                let url = scratch.fresh(pg).await?;
                let store = Store::connect(&url).await?;
                store.migrate().await?;
                let ledger = Ledger::start(store.clone(), LedgerSigningKey::generate(), tree_config(integrate));
                ledger.initialize().await?;
                rates[i].push(appends as f64 / append_load(&ledger, 64, appends, 0).await?.as_secs_f64());
                let tree = store.tree_size().await?;
                ensure!(
                    tree == u64::from(integrate) * (appends + 1),
                    "tree size {tree} after the run"
                );
                drop(ledger);
                store.close().await;
                discard(&url, pg).await?;
            }
        }
        print_pair(&format!("{name}, fresh ledger"), &rates);
    }
    if args.tree_history == 0 {
        println!("  (no history: --tree-history 0 skips the rounds over a history and the proofs)");
    }
    let mut histories = Vec::new();
    for &(name, pg) in backends.iter().filter(|_| args.tree_history > 0) {
        let (url, key) = (scratch.fresh(pg).await?, LedgerSigningKey::generate());
        let (rates, first, end) = over_history(&url, &key, args.tree_history, appends, args.tree_rounds).await?;
        print_pair(&format!("{name}, after {first} entries (to {end})"), &rates);
        histories.push((name, pg, url, key));
    }
    if !histories.is_empty() {
        println!();
        println!(
            "Inclusion proofs served (Store::inclusion_proof + tree_root of the whole tree (kept by size), random \
             leaves, {} concurrent, {} s each):",
            args.proof_tasks, args.proof_seconds
        );
    }
    for (name, pg, url, key) in &histories {
        let store = Store::connect(url).await?;
        let (rate, size) = store_proof_rate(&store, args.proof_seconds, args.proof_tasks).await?;
        let bound = tokio::task::spawn_blocking(move || super::memory_proof_rate(size, 50_000)).await??;
        println!(
            "  tiles in memory (no database), all cores {bound:>10.0} proofs/s (tree of {size}; the proofs' hashing, the bound)"
        );
        println!(
            "  from the store, {name:<10}               {rate:>10.0} proofs/s ({:.2}x memory)",
            rate / bound
        );
        store.close().await;
        if !args.skip_http {
            let http = http_proof_rate(url, key, dir, args.proof_seconds, args.proof_tasks).await?;
            println!(
                "  GET /healthz, same client and server      {:>10.0} /s (HTTP's bound: client and server on these cores)",
                http.floor
            );
            println!(
                "  over HTTP, {name:<10}                    {:>10.0} proofs/s ({:.2}x /healthz; `docketops serve`, GET \
                 /api/v1/ledger/proofs/inclusion?seq=…, admin key; tree of {})",
                http.rate,
                http.rate / http.floor,
                http.size
            );
        }
        discard(url, *pg).await?;
    }
    if args.latency_seconds > 0 {
        latency::latencies(args, &backends, &mut scratch).await?;
    }
    Ok(())
}

fn print_pair(label: &str, rates: &[Vec<f64>; 2]) {
    let best = |r: &[f64]| r.iter().copied().fold(0.0, f64::max);
    let median = |r: &[f64]| {
        let mut r = r.to_vec();
        r.sort_by(f64::total_cmp);
        r.get(r.len() / 2).copied().unwrap_or_default()
    };
    let list = |r: &[f64]| r.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ");
    let [without, with] = rates;
    println!(
        "  {label:<38} best: without {:>6.0}, with {:>6.0} /s = {:.2}x; median {:.2}x (runs: without {}; with {})",
        best(without),
        best(with),
        best(with) / best(without),
        median(with) / median(without),
        list(without),
        list(with)
    );
}

/// Seeds `history` entries with the tree, then interleaves runs without and with it (the catch-up, not
/// timed, integrates what a run without it left). Returns the rates and the ledger's size before and after.
async fn over_history(
    url: &str,
    key: &LedgerSigningKey,
    history: u64,
    appends: u64,
    rounds: usize,
) -> anyhow::Result<([Vec<f64>; 2], u64, u64)> {
    let store = Store::connect(url).await?;
    store.migrate().await?;
    let ledger = Ledger::start(store.clone(), copy_key(key), AppendConfig::default());
    ledger.initialize().await?;
    append_load(&ledger, 64, history.saturating_sub(1), 1).await?;
    drop(ledger);
    let first = store.head().await?.map_or(0, |h| h.seq);
    let mut rates = [Vec::new(), Vec::new()];
    for round in 0..rounds as u64 {
        for (i, integrate) in [false, true].into_iter().enumerate() {
            store.tlog_catch_up(|_| {}).await?;
            let ledger = Ledger::start(store.clone(), copy_key(key), tree_config(integrate));
            // Action ids of their own, after the history's.
            let first = (2 * round + i as u64 + 1) << 40;
            rates[i].push(appends as f64 / append_load(&ledger, 64, appends, first).await?.as_secs_f64());
        }
    }
    let end = store.tlog_catch_up(|_| {}).await?.tree_size;
    store.close().await;
    Ok((rates, first, end))
}

/// Leaf indexes: xorshift64 (`state` never 0).
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Runs `tasks` loops of `call(random)` for `seconds`; calls per second.
async fn closed_loop<F, Fut>(tasks: usize, seconds: u64, call: F) -> anyhow::Result<f64>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let call = Arc::new(call);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut set = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let (call, done) = (Arc::clone(&call), Arc::clone(&done));
        set.spawn(async move {
            let mut state = task as u64 + 1;
            while Instant::now() < until {
                call(next_random(&mut state)).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = set.join_next().await {
        result??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

async fn store_proof_rate(store: &Store, seconds: u64, tasks: usize) -> anyhow::Result<(f64, u64)> {
    let size = store.tree_size().await?;
    let root = store.tree_root(size).await?;
    for index in [0, size / 3, size - 1] {
        let entry = store.entries_after(index as i64, 1).await?;
        let chain: Digest = entry[0]
            .chain_hash
            .parse()
            .map_err(|_| anyhow::anyhow!("a chain hash"))?;
        let proof = store.inclusion_proof(size, index).await?;
        proofs::verify_inclusion(&proof, size, root, index, leaf_hash(&chain))?;
    }
    let store = store.clone();
    let rate = closed_loop(tasks, seconds, move |random| {
        let store = store.clone();
        async move {
            let proof = store.inclusion_proof(size, random % size).await?;
            let root = store.tree_root(size).await?;
            std::hint::black_box((proof, root));
            Ok(())
        }
    })
    .await?;
    Ok((rate, size))
}

/// Kills and reaps a child process when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// This executable with `args`, without the caller's DOCKETOPS_* settings, stderr to `log`.
fn spawn_self(args: &[&str], log: &Path, env: &[(&str, &str)]) -> anyhow::Result<ChildGuard> {
    let mut command = Command::new(std::env::current_exe()?);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("DOCKETOPS_")) {
        command.env_remove(name);
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?);
    Ok(ChildGuard(command.spawn()?))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `url` answers 200 (the child must stay alive meanwhile).
async fn wait_ready(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    child: &mut ChildGuard,
    log: &Path,
) -> anyhow::Result<String> {
    let started = Instant::now();
    loop {
        let mut request = http.get(url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Ok(response) = request.send().await
            && response.status().is_success()
        {
            return Ok(response.text().await?);
        }
        if child.0.try_wait()?.is_some() || started.elapsed() > Duration::from_secs(120) {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            anyhow::bail!("{url} never answered; the process's log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `docketops serve` on the ledger at `url` (signed by `key`), then GET inclusion proofs of random entries.
async fn http_proof_rate(
    url: &str,
    key: &LedgerSigningKey,
    scratch: &Path,
    seconds: u64,
    tasks: usize,
) -> anyhow::Result<HttpProofRate> {
    let dir = tempfile::tempdir_in(scratch)?;
    let key_file = dir.path().join("signing-key.pem");
    crate::keyfile::write_private(&key_file, key)?;
    let admin = gateway::apikey::generate(gateway::apikey::KeyKind::Human);
    let address = format!("127.0.0.1:{}", free_port()?);
    let log = dir.path().join("serve.log");
    let data_dir = dir.path().join("data");
    let mut serve = spawn_self(
        &[
            "serve",
            "--listen",
            &address,
            "--database-url",
            url,
            "--signing-key-file",
            &key_file.display().to_string(),
            "--data-dir",
            &data_dir.display().to_string(),
        ],
        &log,
        &[("DOCKETOPS_BOOTSTRAP_ADMIN_KEY", &admin)],
    )?;
    let http = reqwest::Client::new();
    let base = format!("http://{address}/api/v1/ledger");
    let checkpoint = wait_ready(&http, &format!("{base}/checkpoint"), Some(&admin), &mut serve, &log).await?;
    let checkpoint: serde_json::Value = serde_json::from_str(&checkpoint)?;
    let size = checkpoint["size"].as_u64().context("the checkpoint's size")?;
    // One answer checked: its proof puts its leaf under its root.
    let answer: serde_json::Value = http
        .get(format!("{base}/proofs/inclusion?seq={}", size / 2))
        .bearer_auth(&admin)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let hash = |v: &serde_json::Value| v.as_str().and_then(hash_from_base64).context("a base64 hash");
    let proof = answer["proof"].as_array().context("a proof")?.iter().map(hash);
    let (root, leaf) = (hash(&answer["root_hash"])?, hash(&answer["leaf_hash"])?);
    let proof = proof.collect::<anyhow::Result<Vec<_>>>()?;
    proofs::verify_inclusion(&proof, size, root, size / 2 - 1, leaf)?;
    let client = http.clone();
    let rate = closed_loop(tasks, seconds, move |random| {
        let request = client
            .get(format!("{base}/proofs/inclusion?seq={}", random % size + 1))
            .bearer_auth(&admin);
        async move {
            let response = request.send().await?.error_for_status()?;
            std::hint::black_box(response.bytes().await?);
            Ok(())
        }
    })
    .await?;
    // HTTP's own bound here: the same client and server answering the cheapest route (no credentials, no
    // database), both on this machine's cores.
    let health = format!("http://{address}/healthz");
    let floor = closed_loop(tasks, seconds, move |_| {
        let request = http.get(&health);
        async move {
            std::hint::black_box(request.send().await?.error_for_status()?.bytes().await?);
            Ok(())
        }
    })
    .await?;
    drop(serve);
    Ok(HttpProofRate { rate, floor, size })
}

struct HttpProofRate {
    rate: f64,
    /// GET /healthz from the same client.
    floor: f64,
    size: u64,
}

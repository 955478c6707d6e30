//! `docketops bench-gateway`: actions per second and latency of a governed SCALE end to end (client →
//! gateway → real API server, with the whole pipeline and its five ledger entries), next to the same scale
//! PATCH sent straight to the API server by the same client in the same run, and the embedded policy's
//! evaluation time. `scripts/bench-gateway` sets up the API server, the gateway and the Deployments. With
//! `--budgets-url` (`scripts/bench-gateway --budgets`), each round also compares the gateway without blast-radius
//! budgets to a second one on the same database with budgets, in alternating pairs of measurements.

use domain::{ActionStatus, ActionType};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct BenchGatewayArgs {
    /// The gateway, e.g. http://127.0.0.1:8443.
    #[arg(long)]
    pub url: String,
    /// An operator (agent) key with a mutate scope on the Deployments.
    #[arg(long, env = "DOCKETOPS_BENCH_KEY")]
    pub key: String,
    /// Namespace of the Deployments `<prefix>-0` … `<prefix>-<concurrency - 1>` (one per client, so clients
    /// never conflict on one object).
    #[arg(long)]
    pub namespace: String,
    #[arg(long, default_value = "bench")]
    pub prefix: String,
    /// The cluster admin's kubeconfig, for the direct baseline.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Requests per client and path.
    #[arg(long, default_value_t = 40)]
    pub requests: usize,
    /// Actions of history before each measured round, e.g. `0,10000,100000`. Before a round the ledger is
    /// seeded up to that many actions by `docketops seed-history`, run with this process's environment
    /// (point it at the gateway's database the way `serve` is, e.g. `DOCKETOPS_DATA_DIR`).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub history: Vec<u64>,
    /// The gateway's process id: its resident memory is printed at idle, after each round and per soak minute.
    #[arg(long)]
    pub gateway_pid: Option<u32>,
    /// An admin key, for the identity and ledger reads of the soak.
    #[arg(long, env = "DOCKETOPS_BENCH_ADMIN_KEY")]
    pub admin_key: Option<String>,
    /// After the rounds, a soak of this many seconds: an open-loop load of mixed reads and writes.
    #[arg(long, default_value_t = 0)]
    pub soak_seconds: u64,
    /// Requests per second of the soak.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// Governed SCALEs per 100 soak requests; the rest read the API.
    #[arg(long, default_value_t = 25)]
    pub writes_percent: u32,
    /// A second gateway on the same database, with blast-radius budgets that apply to every SCALE measured
    /// (`scripts/bench-gateway --budgets` starts it with scripts/bench-budgets.toml), while `--url` has none.
    /// Each round then measures the same SCALEs through both, in `--budgets-pairs` pairs whose order alternates
    /// (off then on, on then off, …: a drift of this shared machine's speed does not read as a cost), and prints
    /// each pair's ratios (throughput on/off, p50 on/off) and their median. The round's own gateway measurement
    /// is the first pair's "off".
    #[arg(long)]
    pub budgets_url: Option<String>,
    /// Budgets off/on pairs per round (with `--budgets-url`).
    #[arg(long, default_value_t = 3, requires = "budgets_url", value_parser = clap::value_parser!(u16).range(1..))]
    pub budgets_pairs: u16,
}

/// p50/p99 of a set of latencies.
pub struct Percentiles {
    sorted: Vec<Duration>,
}

impl Percentiles {
    pub fn of(latencies: &[Duration]) -> Self {
        let mut sorted = latencies.to_vec();
        sorted.sort();
        Self { sorted }
    }

    fn pick(&self, q: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        self.sorted[((self.sorted.len() as f64 * q) as usize).min(self.sorted.len() - 1)]
    }

    pub fn p50_ms(&self) -> f64 {
        self.pick(0.50).as_secs_f64() * 1e3
    }

    pub fn p99_ms(&self) -> f64 {
        self.pick(0.99).as_secs_f64() * 1e3
    }
}

/// Resident memory of a process in MiB (Linux `/proc`).
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
    failures: usize,
}

/// A measurement's throughput (requests/s) and latencies (ms).
#[derive(Debug, Clone, Copy)]
struct Figures {
    throughput: f64,
    p50: f64,
    p99: f64,
}

impl Run {
    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn figures(&self) -> Figures {
        let p = Percentiles::of(&self.latencies);
        Figures {
            throughput: self.throughput(),
            p50: p.p50_ms(),
            p99: p.p99_ms(),
        }
    }

    fn report(&self, name: &str) {
        let p = Percentiles::of(&self.latencies);
        println!(
            "{name:<34} {:>8.1} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests, {} failed)",
            self.throughput(),
            p.p50_ms(),
            p.p99_ms(),
            self.latencies.len(),
            self.failures
        );
    }
}

/// Runs `concurrency` clients, each doing `requests` calls of `call(client index, request index)`.
async fn measure<F, Fut>(concurrency: usize, requests: usize, call: F) -> Run
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(requests);
            let mut failures = 0;
            for i in 0..requests {
                let t = Instant::now();
                if !call(client, i).await {
                    failures += 1;
                }
                latencies.push(t.elapsed());
            }
            (latencies, failures)
        }));
    }
    let mut run = Run {
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
        failures: 0,
    };
    for task in tasks {
        if let Ok((latencies, failures)) = task.await {
            run.latencies.extend(latencies);
            run.failures += failures;
        }
    }
    run.elapsed = started.elapsed();
    run
}

pub async fn run(args: BenchGatewayArgs) -> anyhow::Result<ExitCode> {
    let source = executor::KubeSource::Kubeconfig {
        path: Some(args.kubeconfig.clone()),
        context: None,
    };
    let kube = Arc::new(executor::KubeConnection::connect(&source, Duration::from_secs(30)).await?);
    let http = reqwest::Client::new();
    println!(
        "{} clients x {} requests each, SCALE of Deployments {}/{}-N (MEDIUM risk, policy enforce)",
        args.concurrency, args.requests, args.namespace, args.prefix
    );
    if let Some(on) = &args.budgets_url {
        println!(
            "budgets: off at {}, on at {on} (same database); {} off/on pairs per round, order alternating",
            args.url, args.budgets_pairs
        );
    }
    warm_up(&args, &kube, &http).await?;

    let idle_rss = args.gateway_pid.and_then(rss_mib);
    let mut rounds: Vec<Round> = Vec::new();
    let mut seeded = 0;
    for &history in &args.history {
        if history > seeded {
            seed_history(history - seeded).await?;
            seeded = history;
        }
        println!("-- after {history} actions of seeded history");
        let round = measure_round(&args, &kube, &http).await;
        rounds.push(Round {
            history,
            rss: args.gateway_pid.and_then(rss_mib),
            ..round
        });
    }
    let failures: usize = rounds
        .iter()
        .map(|r| r.direct.failures + r.gateway.failures + r.budget_failures)
        .sum();
    summarize(&rounds, idle_rss);
    summarize_budgets(&rounds);
    print_policy_evaluation()?;
    let soaked = match args.soak_seconds {
        0 => true,
        seconds => {
            crate::soak::Soak {
                url: args.url.clone(),
                agent_key: args.key.clone(),
                admin_key: args.admin_key.clone(),
                namespace: args.namespace.clone(),
                prefix: args.prefix.clone(),
                deployments: args.concurrency,
                seconds,
                rate: args.rate,
                writes_percent: args.writes_percent,
                gateway_pid: args.gateway_pid,
            }
            .run()
            .await?
        }
    };
    Ok(if failures == 0 && soaked {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Warms every path (connections, discovery caches, the gateways' first requests) before measuring: one direct
/// PATCH and one governed SCALE through each gateway per client.
async fn warm_up(
    args: &BenchGatewayArgs,
    kube: &Arc<executor::KubeConnection>,
    http: &reqwest::Client,
) -> anyhow::Result<()> {
    for client in 0..args.concurrency {
        let name = format!("{}-{client}", args.prefix);
        executor::setup::patch_scale_directly(kube, &args.namespace, &name, 1)
            .await
            .with_context(|| format!("direct PATCH of {}/{name}", args.namespace))?;
    }
    for url in std::iter::once(&args.url).chain(&args.budgets_url) {
        let warm = measure_gateway(args, http, url, 1).await;
        anyhow::ensure!(
            warm.failures == 0,
            "warming up the gateway at {url}: {} of {} SCALEs did not complete",
            warm.failures,
            args.concurrency
        );
    }
    Ok(())
}

/// The embedded policy on a typical input, in this process.
fn print_policy_evaluation() -> anyhow::Result<()> {
    let engine = policy::EmbeddedEngine::default_policy()?;
    let input = json!({
        "identity": {"id": "agt_bench", "name": "bench", "kind": "agent", "roles": ["operator"],
                     "scopes": [{"namespaces": ["staging"], "access": "mutate", "kinds": ["Deployment"]}], "trust_score": 0},
        "action": {"action_type": ActionType::Scale.as_str(), "namespace": "staging", "resource_kind": "Deployment",
                   "resource_name": "web-api", "parameters": {"replicas": 5}, "justification": "load test"},
        "risk": {"level": "MEDIUM", "rules": ["baseline"]},
        "preview": {"diff": [{"op": "replace", "path": "/spec/replicas", "from": 2, "to": 5}]},
        "time": "2026-11-27T10:00:00Z"});
    let rounds = 2_000;
    engine.decide(&input)?;
    let t = Instant::now();
    for _ in 0..rounds {
        engine.decide(&input)?;
    }
    let per_eval = t.elapsed() / rounds;
    println!(
        "policy evaluation (embedded, default policy): {:.1} µs (target: under 100 µs)",
        per_eval.as_secs_f64() * 1e6
    );
    Ok(())
}

/// One measured round: the direct baseline and the gateway, back to back, then the budgets pairs if any.
struct Round {
    history: u64,
    direct: Run,
    gateway: Run,
    rss: Option<f64>,
    /// Budgets off/on pairs (with `--budgets-url`).
    pairs: Vec<Pair>,
    /// Failed requests of the pairs' own measurements.
    budget_failures: usize,
}

const GATEWAY: &str = "gateway SCALE (full pipeline)";
const BUDGETS_OFF: &str = "gateway SCALE, budgets off";
const BUDGETS_ON: &str = "gateway SCALE, budgets on";

async fn measure_round(args: &BenchGatewayArgs, kube: &Arc<executor::KubeConnection>, http: &reqwest::Client) -> Round {
    let direct = {
        let (kube, namespace, prefix) = (kube.clone(), args.namespace.clone(), args.prefix.clone());
        measure(args.concurrency, args.requests, move |client, i| {
            let (kube, namespace, name) = (kube.clone(), namespace.clone(), format!("{prefix}-{client}"));
            async move {
                executor::setup::patch_scale_directly(&kube, &namespace, &name, 2 + (i % 2) as u32)
                    .await
                    .is_ok()
            }
        })
        .await
    };
    direct.report("direct PATCH to the API server");
    let gateway = measure_gateway(args, http, &args.url, args.requests).await;
    gateway.report(if args.budgets_url.is_some() {
        BUDGETS_OFF
    } else {
        GATEWAY
    });
    let (pairs, budget_failures) = match &args.budgets_url {
        Some(on_url) => compare_budgets(args, http, on_url, &gateway).await,
        None => (Vec::new(), 0),
    };
    Round {
        history: 0,
        direct,
        gateway,
        rss: None,
        pairs,
        budget_failures,
    }
}

/// `concurrency` clients each sending `requests` governed SCALEs of its own Deployment to the gateway at `url`.
async fn measure_gateway(args: &BenchGatewayArgs, http: &reqwest::Client, url: &str, requests: usize) -> Run {
    let (http, url, key, namespace, prefix) = (
        http.clone(),
        url.to_owned(),
        args.key.clone(),
        args.namespace.clone(),
        args.prefix.clone(),
    );
    measure(args.concurrency, requests, move |client, i| {
        let body = json!({"action_type": ActionType::Scale.as_str(), "namespace": namespace, "resource_kind": "Deployment",
            "resource_name": format!("{prefix}-{client}"), "parameters": {"replicas": 2 + (i % 2)},
            "justification": "benchmark"});
        let request = http.post(format!("{url}/api/v1/actions")).bearer_auth(&key).json(&body);
        async move {
            match request.send().await {
                Ok(response) => response
                    .json::<Value>()
                    .await
                    .is_ok_and(|answer| answer["status"] == ActionStatus::Completed.as_str()),
                Err(_) => false,
            }
        }
    })
    .await
}

/// A budgets off/on pair: the same SCALEs through the gateway without budgets and the one with, back to back.
struct Pair {
    off: Figures,
    on: Figures,
    /// Whether "on" was measured first.
    on_first: bool,
}

impl Pair {
    fn throughput_ratio(&self) -> f64 {
        self.on.throughput / self.off.throughput
    }

    fn p50_ratio(&self) -> f64 {
        self.on.p50 / self.off.p50
    }

    fn p99_ratio(&self) -> f64 {
        self.on.p99 / self.off.p99
    }

    fn order(&self) -> &'static str {
        if self.on_first { "on, off" } else { "off, on" }
    }
}

/// `--budgets-pairs` pairs, the first one's "off" being the round's gateway measurement (`first_off`); the order
/// alternates: off–on, on–off, off–on, … Returns the pairs and the failed requests of their measurements.
async fn compare_budgets(
    args: &BenchGatewayArgs,
    http: &reqwest::Client,
    on_url: &str,
    first_off: &Run,
) -> (Vec<Pair>, usize) {
    let mut failures = 0;
    let mut timed = async |url: &str, label: &str| {
        let run = measure_gateway(args, http, url, args.requests).await;
        run.report(label);
        failures += run.failures;
        run.figures()
    };
    let mut pairs = Vec::new();
    for n in 0..usize::from(args.budgets_pairs) {
        let on_first = n % 2 == 1;
        let (off, on) = match (n, on_first) {
            (0, _) => (first_off.figures(), timed(on_url, BUDGETS_ON).await),
            (_, false) => {
                let off = timed(&args.url, BUDGETS_OFF).await;
                (off, timed(on_url, BUDGETS_ON).await)
            }
            (_, true) => {
                let on = timed(on_url, BUDGETS_ON).await;
                (timed(&args.url, BUDGETS_OFF).await, on)
            }
        };
        let pair = Pair { off, on, on_first };
        println!(
            "  pair {} ({}): budgets on / off: throughput {:.2}×, p50 {:.2}×, p99 {:.2}×",
            n + 1,
            pair.order(),
            pair.throughput_ratio(),
            pair.p50_ratio(),
            pair.p99_ratio()
        );
        pairs.push(pair);
    }
    (pairs, failures)
}

/// Appends `actions` actions of history with `docketops seed-history` (this binary, this environment).
async fn seed_history(actions: u64) -> anyhow::Result<()> {
    let binary = std::env::current_exe().context("the path of this binary")?;
    let status = tokio::process::Command::new(binary)
        .args(["seed-history", "--yes", "--quiet", "--actions", &actions.to_string()])
        .status()
        .await
        .context("running docketops seed-history")?;
    anyhow::ensure!(status.success(), "docketops seed-history failed ({status})");
    Ok(())
}

/// The table of rounds, and the ratios the README quotes.
fn summarize(rounds: &[Round], idle_rss: Option<f64>) {
    let mib = |r: Option<f64>| r.map_or("n/a".to_owned(), |r| format!("{r:.1} MiB"));
    println!(
        "\n{:>9} | {:>10} {:>9} {:>9} | {:>10} {:>9} {:>9} | {:>9} {:>9} | gateway RSS",
        "history", "direct/s", "p50 ms", "p99 ms", "gateway/s", "p50 ms", "p99 ms", "p50 ×", "p99 ×"
    );
    for round in rounds {
        let (d, g) = (
            Percentiles::of(&round.direct.latencies),
            Percentiles::of(&round.gateway.latencies),
        );
        println!(
            "{:>9} | {:>10.1} {:>9.2} {:>9.2} | {:>10.1} {:>9.2} {:>9.2} | {:>9.2} {:>9.2} | {}",
            round.history,
            round.direct.throughput(),
            d.p50_ms(),
            d.p99_ms(),
            round.gateway.throughput(),
            g.p50_ms(),
            g.p99_ms(),
            g.p50_ms() / d.p50_ms(),
            g.p99_ms() / d.p99_ms(),
            mib(round.rss)
        );
    }
    println!("gateway RSS at idle before the rounds: {}", mib(idle_rss));
    if let (Some(first), Some(last)) = (rounds.first(), rounds.last())
        && rounds.len() > 1
    {
        let p50 = |r: &Round| Percentiles::of(&r.gateway.latencies).p50_ms();
        println!(
            "after {} vs {} actions of history: throughput {:.2}×, p50 {:.2}× (target: within 10%)",
            last.history,
            first.history,
            last.gateway.throughput() / first.gateway.throughput(),
            p50(last) / p50(first)
        );
    }
    println!("targets: gateway p50 at most 2× and p99 at most 3× the direct PATCH's; at least 250 governed actions/s");
}

/// Budgets on vs off: every pair's figures and ratios (on / off), each round's median, and the median of all
/// pairs — the figure issue 17's target (within 5%) is read against.
fn summarize_budgets(rounds: &[Round]) {
    let all: Vec<&Pair> = rounds.iter().flat_map(|r| &r.pairs).collect();
    if all.is_empty() {
        return;
    }
    println!("\nbudgets on vs off: the same SCALEs through the gateway without budgets and the one with, in pairs");
    println!(
        "{:>9} | {:>8} | {:>10} {:>9} | {:>10} {:>9} | {:>9} {:>9} {:>9}",
        "history", "pair", "off/s", "p50 ms", "on/s", "p50 ms", "thr ×", "p50 ×", "p99 ×"
    );
    for round in rounds.iter().filter(|r| !r.pairs.is_empty()) {
        for (n, pair) in round.pairs.iter().enumerate() {
            println!(
                "{:>9} | {:>8} | {:>10.1} {:>9.2} | {:>10.1} {:>9.2} | {:>9.2} {:>9.2} {:>9.2}",
                round.history,
                format!("{} {}", n + 1, pair.order().replace(", ", "-")),
                pair.off.throughput,
                pair.off.p50,
                pair.on.throughput,
                pair.on.p50,
                pair.throughput_ratio(),
                pair.p50_ratio(),
                pair.p99_ratio()
            );
        }
        let pairs: Vec<&Pair> = round.pairs.iter().collect();
        let (throughput, p50, p99) = medians(&pairs);
        println!(
            "{:>9} | {:>8} | {:>10} {:>9} | {:>10} {:>9} | {throughput:>9.2} {p50:>9.2} {p99:>9.2}",
            round.history, "median", "", "", "", ""
        );
    }
    let (throughput, p50, _) = medians(&all);
    println!(
        "budgets on / off, median of {} pairs: throughput {throughput:.2}×, p50 {p50:.2}× (target: within 5%, i.e. \
         throughput at least 0.95×, p50 at most 1.05×: {})",
        all.len(),
        if throughput >= 0.95 && p50 <= 1.05 {
            "met"
        } else {
            "not met"
        }
    );
}

/// The medians of the pairs' throughput, p50 and p99 ratios.
fn medians(pairs: &[&Pair]) -> (f64, f64, f64) {
    let median = |ratio: fn(&Pair) -> f64| {
        let mut values: Vec<f64> = pairs.iter().map(|p| ratio(p)).collect();
        values.sort_by(f64::total_cmp);
        match values.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        }
    };
    (
        median(Pair::throughput_ratio),
        median(Pair::p50_ratio),
        median(Pair::p99_ratio),
    )
}

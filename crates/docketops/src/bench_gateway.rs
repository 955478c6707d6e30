//! `docketops bench-gateway`: actions per second and latency of a governed SCALE end to end (client →
//! gateway → real API server, with the whole pipeline and its five ledger entries), next to the same scale
//! PATCH sent straight to the API server by the same client in the same run, and the embedded policy's
//! evaluation time. `scripts/bench-gateway` sets up the API server, the gateway and the Deployments.

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
}

struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
    failures: usize,
}

impl Run {
    fn report(&self, name: &str) {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let pick = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
        println!(
            "{name:<34} {:>8.1} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests, {} failed)",
            sorted.len() as f64 / self.elapsed.as_secs_f64(),
            pick(0.50).as_secs_f64() * 1e3,
            pick(0.99).as_secs_f64() * 1e3,
            sorted.len(),
            self.failures
        );
    }

    fn p50(&self) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted[sorted.len() / 2]
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

    // Warm both paths (connections, discovery caches) before measuring.
    for client in 0..args.concurrency {
        let name = format!("{}-{client}", args.prefix);
        executor::setup::patch_scale_directly(&kube, &args.namespace, &name, 1)
            .await
            .with_context(|| format!("direct PATCH of {}/{name}", args.namespace))?;
    }

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
    let gateway = {
        let (http, url, key, namespace, prefix) = (
            http.clone(),
            args.url.clone(),
            args.key.clone(),
            args.namespace.clone(),
            args.prefix.clone(),
        );
        measure(args.concurrency, args.requests, move |client, i| {
            let body = json!({"action_type": "SCALE", "namespace": namespace, "resource_kind": "Deployment",
                "resource_name": format!("{prefix}-{client}"), "parameters": {"replicas": 2 + (i % 2)},
                "justification": "benchmark"});
            let request = http.post(format!("{url}/api/v1/actions")).bearer_auth(&key).json(&body);
            async move {
                match request.send().await {
                    Ok(response) => response
                        .json::<Value>()
                        .await
                        .is_ok_and(|answer| answer["status"] == "COMPLETED"),
                    Err(_) => false,
                }
            }
        })
        .await
    };
    direct.report("direct PATCH to the API server");
    gateway.report("gateway SCALE (full pipeline)");
    println!(
        "gateway p50 / direct p50: {:.2}x (target: within 2x)",
        gateway.p50().as_secs_f64() / direct.p50().as_secs_f64()
    );

    // The embedded policy on a typical input, in this process.
    let engine = policy::EmbeddedEngine::default_policy()?;
    let input = json!({
        "identity": {"id": "agt_bench", "name": "bench", "kind": "agent", "roles": ["operator"],
                     "scopes": [{"namespaces": ["staging"], "access": "mutate", "kinds": ["Deployment"]}], "trust_score": 0},
        "action": {"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment",
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
    Ok(if gateway.failures + direct.failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

//! `docketops bench-gateway --soak-seconds N`: a steady open-loop load of mixed reads and writes at a fixed
//! rate, reported minute by minute (p50/p99, errors, the gateway's RSS), to show that latency and memory
//! stay flat while the ledger grows. `scripts/soak-gateway` runs it for 10 minutes at 200 requests/s.

use domain::{ActionStatus, ActionType};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};

use crate::bench_gateway::{Percentiles, rss_mib};

/// What the soak sends and where.
pub struct Soak {
    pub url: String,
    /// An operator key with a mutate scope on the Deployments.
    pub agent_key: String,
    /// An admin key for the identity reads.
    pub admin_key: Option<String>,
    pub namespace: String,
    pub prefix: String,
    pub deployments: usize,
    pub seconds: u64,
    pub rate: u32,
    /// Writes per 100 requests (governed SCALEs); the rest are reads of the API.
    pub writes_percent: u32,
    pub gateway_pid: Option<u32>,
}

/// The figures of one minute.
#[derive(Default)]
struct Minute {
    latencies: Vec<Duration>,
    errors: u64,
}

/// Most requests in flight: beyond that the gateway is not keeping up and ticks are counted as dropped.
const MAX_IN_FLIGHT: usize = 512;

impl Soak {
    /// Runs the load and prints one line per minute and a verdict; false if the targets were missed.
    pub async fn run(self) -> anyhow::Result<bool> {
        let this = Arc::new(self);
        let minutes = this.seconds.div_ceil(60) as usize;
        let figures: Arc<Vec<std::sync::Mutex<Minute>>> = Arc::new((0..minutes).map(|_| Default::default()).collect());
        let locks: Arc<Vec<Mutex<()>>> = Arc::new((0..this.deployments).map(|_| Mutex::new(())).collect());
        let recent_action = Arc::new(std::sync::Mutex::new(None::<String>));
        let dropped = Arc::new(AtomicU64::new(0));
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let http = reqwest::Client::new();
        println!(
            "soak: {} s at {} requests/s ({}% governed SCALEs, the rest API reads), reported per minute",
            this.seconds, this.rate, this.writes_percent
        );
        let started = Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_secs(1) / this.rate);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut rss = Vec::new();
        let mut n: u64 = 0;
        let mut reported = 0;
        while started.elapsed() < Duration::from_secs(this.seconds) {
            ticker.tick().await;
            // The last tick may land on the run's last second: it still belongs to the last minute.
            let minute = ((started.elapsed().as_secs() / 60) as usize).min(minutes - 1);
            if minute > reported {
                rss.push(this.report_minute(reported, &figures[reported]));
                reported = minute;
            }
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let (this, figures, locks, recent, http) = (
                this.clone(),
                figures.clone(),
                locks.clone(),
                recent_action.clone(),
                http.clone(),
            );
            n += 1;
            tokio::spawn(async move {
                let (elapsed, ok) = this.one(n, &http, &locks, &recent).await;
                let mut minute = figures[minute.min(figures.len() - 1)].lock().expect("figures lock");
                minute.latencies.push(elapsed);
                minute.errors += u64::from(!ok);
                drop(slot);
            });
        }
        // Let the last requests finish before the last minute is reported.
        let _ = slots.acquire_many(MAX_IN_FLIGHT as u32).await;
        rss.push(this.report_minute(reported, &figures[reported]));
        Ok(this.verdict(&figures, &rss, dropped.load(Ordering::Relaxed)))
    }

    /// Request `n`: a governed SCALE of one Deployment (one at a time per Deployment, so writes never
    /// conflict with each other), or one of the reads a console or an agent does between changes.
    async fn one(
        &self,
        n: u64,
        http: &reqwest::Client,
        locks: &[Mutex<()>],
        recent: &std::sync::Mutex<Option<String>>,
    ) -> (Duration, bool) {
        let url = &self.url;
        if n % 100 < u64::from(self.writes_percent) {
            let index = (n as usize) % self.deployments;
            // Timed from the tick: waiting for the Deployment's previous write is part of the latency.
            let started = Instant::now();
            let _only_writer = locks[index].lock().await;
            let body = json!({"action_type": ActionType::Scale.as_str(), "namespace": self.namespace, "resource_kind": "Deployment",
                "resource_name": format!("{}-{index}", self.prefix), "parameters": {"replicas": 2 + n % 2},
                "justification": "soak"});
            let answer = send(
                http.post(format!("{url}/api/v1/actions"))
                    .bearer_auth(&self.agent_key)
                    .json(&body),
            )
            .await;
            let ok = answer
                .as_ref()
                .is_some_and(|a| a["status"] == ActionStatus::Completed.as_str());
            if let Some(id) = answer.as_ref().and_then(|a| a["action_id"].as_str()) {
                *recent.lock().expect("recent lock") = Some(id.to_owned());
            }
            return (started.elapsed(), ok);
        }
        let admin = self.admin_key.as_deref().unwrap_or(&self.agent_key);
        let recent = recent.lock().expect("recent lock").clone();
        let request = match (n % 4, recent) {
            (0, Some(id)) => http
                .get(format!("{url}/api/v1/actions/{id}"))
                .bearer_auth(&self.agent_key),
            (1, _) => http.get(format!("{url}/api/v1/identities?limit=20")).bearer_auth(admin),
            (2, _) => http
                .get(format!("{url}/api/v1/ledger/entries?limit=20"))
                .bearer_auth(admin),
            _ => http
                .get(format!("{url}/api/v1/actions?limit=20"))
                .bearer_auth(&self.agent_key),
        };
        let started = Instant::now();
        let ok = send(request).await.is_some();
        (started.elapsed(), ok)
    }

    fn report_minute(&self, index: usize, minute: &std::sync::Mutex<Minute>) -> Option<f64> {
        let minute = minute.lock().expect("figures lock");
        let rss = self.gateway_pid.and_then(rss_mib);
        let p = Percentiles::of(&minute.latencies);
        println!(
            "minute {:>2}: {:>6} requests  {:>4} errors  p50 {:>7.2} ms  p99 {:>7.2} ms  gateway RSS {}",
            index + 1,
            minute.latencies.len(),
            minute.errors,
            p.p50_ms(),
            p.p99_ms(),
            rss.map_or("n/a".into(), |r| format!("{r:.1} MiB"))
        );
        rss
    }

    fn verdict(&self, figures: &[std::sync::Mutex<Minute>], rss: &[Option<f64>], dropped: u64) -> bool {
        let p99 = |i: usize| Percentiles::of(&figures[i].lock().expect("figures lock").latencies).p99_ms();
        let errors: u64 = figures.iter().map(|m| m.lock().expect("figures lock").errors).sum();
        let (first, last) = (p99(0), p99(figures.len() - 1));
        let ratio = last / first;
        println!("p99 last minute / first minute: {ratio:.2} (target: at most 1.2)");
        let mut ok = ratio <= 1.2 && errors == 0 && dropped == 0;
        if let (Some(Some(after_first)), Some(Some(end))) = (rss.first(), rss.last()) {
            let growth = end - after_first;
            println!("gateway RSS growth after the first minute: {growth:.1} MiB (target: under 10 MiB)");
            ok &= growth < 10.0;
        }
        println!("errors: {errors}; ticks dropped (more than {MAX_IN_FLIGHT} in flight): {dropped}");
        ok
    }
}

/// The JSON answer of a successful (2xx) request.
async fn send(request: reqwest::RequestBuilder) -> Option<Value> {
    let response = request.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json::<Value>().await.ok()
}

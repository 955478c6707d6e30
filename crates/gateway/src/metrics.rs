//! Prometheus metrics (`GET /metrics`): HTTP requests and their latency, actions by status, policy
//! decisions by outcome and mode, risk levels, pipeline and policy latency, and ledger appends.
//! Labels are bounded sets (route templates, not paths), so scrapes stay small.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use storage::Ledger;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    outcome: String,
    mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RiskLabels {
    level: String,
}

/// The process's metrics registry: handlers and the pipeline count into it, `/metrics` encodes it.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<RouteLabels, Histogram>,
    actions: Family<StatusLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    risk: Family<RiskLabels, Counter>,
    action_seconds: Histogram,
    policy_seconds: Histogram,
    ledger_entries: Gauge,
    ledger_transactions: Gauge,
    ledger: Option<Ledger>,
    budget_reservations: Gauge,
    budget_transactions: Gauge,
    budget_store: Option<storage::Store>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~105 s.
    Histogram::new(exponential_buckets(0.0001, 4.0, 11))
}

impl Metrics {
    /// Metrics of this process; `ledger` supplies the append counters at each scrape.
    pub fn new(ledger: Option<Ledger>) -> Metrics {
        let mut registry = Registry::with_prefix("docketops");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let actions = Family::<StatusLabels, Counter>::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        let risk = Family::<RiskLabels, Counter>::default();
        let action_seconds = latency_histogram();
        let policy_seconds = latency_histogram();
        let ledger_entries = Gauge::default();
        let ledger_transactions = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            http_seconds.clone(),
        );
        registry.register(
            "actions",
            "Actions by the status they reached: the answer to a submission, then the final status of one that waited for approval",
            actions.clone(),
        );
        registry.register(
            "policy_decisions",
            "Policy decisions by outcome and mode",
            decisions.clone(),
        );
        registry.register("risk_classifications", "Risk classifications by level", risk.clone());
        registry.register(
            "action_duration_seconds",
            "Time from request to final status",
            action_seconds.clone(),
        );
        registry.register(
            "policy_evaluation_duration_seconds",
            "Policy evaluation latency",
            policy_seconds.clone(),
        );
        registry.register(
            "ledger_appended_entries",
            "Entries this process appended",
            ledger_entries.clone(),
        );
        registry.register(
            "ledger_commits",
            "Ledger transactions (group commits) of this process",
            ledger_transactions.clone(),
        );
        let budget_reservations = Gauge::default();
        let budget_transactions = Gauge::default();
        registry.register(
            "budget_reservations",
            "Budget reservations this process answered",
            budget_reservations.clone(),
        );
        registry.register(
            "budget_commits",
            "Transactions of this process that decided budget reservations (the ledger writer's batches that \
             carried any, so concurrent reservations share one)",
            budget_transactions.clone(),
        );
        Metrics {
            registry,
            http_requests,
            http_seconds,
            actions,
            decisions,
            risk,
            action_seconds,
            policy_seconds,
            ledger_entries,
            ledger_transactions,
            ledger,
            budget_reservations,
            budget_transactions,
            budget_store: None,
        }
    }

    /// Reports `store`'s budget reservations at each scrape too.
    pub fn with_budget_store(mut self, store: storage::Store) -> Metrics {
        self.budget_store = Some(store);
        self
    }

    /// Counts one answered request by method, route template and status, and observes its latency. A method
    /// outside the standard seven is counted as `other`.
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        // Clients choose the method string: keep the label set bounded.
        const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
        let method = if METHODS.contains(&method) { method } else { "other" };
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.http_seconds
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts the status a submission's answer reports and observes the time the pipeline took to reach it.
    pub fn action_finished(&self, status: &str, elapsed: Duration) {
        self.actions
            .get_or_create(&StatusLabels {
                status: status.to_owned(),
            })
            .inc();
        self.action_seconds.observe(elapsed.as_secs_f64());
    }

    /// The final status of an action that waited for an approval (its latency is the approvers', not ours).
    pub fn action_resolved(&self, status: &str) {
        self.actions
            .get_or_create(&StatusLabels {
                status: status.to_owned(),
            })
            .inc();
    }

    /// Counts a policy decision by its outcome (after trust gates) and the policy mode, and observes how long
    /// the policy took to evaluate.
    pub fn decision(&self, outcome: &str, mode: &str, elapsed: Duration) {
        self.decisions
            .get_or_create(&DecisionLabels {
                outcome: outcome.to_owned(),
                mode: mode.to_owned(),
            })
            .inc();
        self.policy_seconds.observe(elapsed.as_secs_f64());
    }

    /// Counts one risk classification at `level`.
    pub fn risk(&self, level: &str) {
        self.risk
            .get_or_create(&RiskLabels {
                level: level.to_owned(),
            })
            .inc();
    }

    /// The Prometheus text exposition format.
    pub fn encode(&self) -> String {
        if let Some(ledger) = &self.ledger {
            let stats = ledger.stats();
            self.ledger_entries.set(stats.entries as i64);
            self.ledger_transactions.set(stats.transactions as i64);
        }
        if let Some(store) = &self.budget_store {
            let stats = store.budget_reservation_stats();
            self.budget_reservations.set(stats.reservations as i64);
            self.budget_transactions.set(stats.transactions as i64);
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

//! One policy evaluation of the shipped default policy (target: under 100 µs).
//!
//! `cargo bench -p docketops-policy --bench policy`
//!
//! `decide` is what the gateway calls (evaluation, input hash, decision id); `evaluate` the Rego
//! evaluation alone; `decide_parallel` runs on every core at once (time per decision, so it shows
//! whether concurrent callers slow each other down). The `regorus` group compares ways of sharing a
//! prepared policy between threads, which is how `EmbeddedEngine` chose cloning a prepared engine.

use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use policy::EmbeddedEngine;
use serde::Deserialize;
use serde_json::{Value, json};

const ENTRY: &str = "data.docketops.policy.decision";

fn sample_input() -> Value {
    json!({
        "identity": {"id": "agt_01jdx4k3m9q2w8e7r6t5y4u3i2", "name": "ci-bot", "kind": "agent", "roles": ["operator"],
                     "scopes": [{"namespaces": ["staging"], "access": "mutate", "kinds": ["Deployment"]}], "trust_score": 0},
        "action": {"action_type": "SCALE", "namespace": "staging", "resource_kind": "Deployment",
                   "resource_name": "web-api", "parameters": {"replicas": 5}, "justification": "Scale up for load test"},
        "risk": {"level": "MEDIUM", "rules": ["baseline"]},
        "preview": {"diff": [{"op": "replace", "path": "/spec/replicas", "from": 2, "to": 5}]},
        "time": "2026-11-27T10:00:00Z",
    })
}

fn embedded(c: &mut Criterion) {
    let engine = EmbeddedEngine::default_policy().expect("the default policy loads");
    let input = sample_input();
    let mut group = c.benchmark_group("default_policy");
    group.bench_function("decide", |b| {
        b.iter(|| engine.decide(black_box(&input)).expect("decides"))
    });
    group.bench_function("evaluate", |b| {
        b.iter(|| engine.evaluate(black_box(&input)).expect("evaluates"))
    });
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    group.bench_function(format!("decide_parallel_{threads}_threads"), |b| {
        b.iter_custom(|iterations| {
            let per_thread = iterations.div_ceil(threads as u64);
            let started = Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| {
                        for _ in 0..per_thread {
                            black_box(engine.decide(black_box(&input)).expect("decides"));
                        }
                    });
                }
            });
            // Wall time for all `iterations` decisions; criterion divides by `iterations`.
            started.elapsed()
        })
    });
    group.finish();
}

fn strategies(c: &mut Criterion) {
    let mut base = regorus::Engine::new();
    base.add_policy("default.rego".into(), policy::DEFAULT_POLICY.into())
        .expect("loads");
    let compiled = base.clone().compile_with_entrypoint(&ENTRY.into()).expect("compiles");
    let mut prepared = base.clone();
    prepared.compile_with_entrypoint(&ENTRY.into()).expect("compiles");
    let locked = Mutex::new(prepared.clone());
    let input = sample_input();
    let to_rego = |input: &Value| regorus::Value::deserialize(input).expect("converts");

    let mut group = c.benchmark_group("regorus");
    group.bench_function("clone_prepared_engine", |b| {
        b.iter(|| {
            let mut engine = prepared.clone();
            engine.set_input(to_rego(&input));
            engine.eval_rule(ENTRY.into()).expect("evaluates")
        })
    });
    group.bench_function("compiled_policy_eval_with_input", |b| {
        b.iter(|| compiled.eval_with_input(to_rego(&input)).expect("evaluates"))
    });
    group.bench_function("mutex_engine_uncontended", |b| {
        b.iter(|| {
            let mut engine = locked.lock().expect("lock");
            engine.set_input(to_rego(&input));
            engine.eval_rule(ENTRY.into()).expect("evaluates")
        })
    });
    group.bench_function("unprepared_engine_per_call", |b| {
        b.iter(|| {
            let mut engine = base.clone();
            engine.set_input(to_rego(&input));
            engine.eval_rule(ENTRY.into()).expect("evaluates")
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = embedded, strategies
}
criterion_main!(benches);

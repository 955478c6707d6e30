//! Benchmarks of the ledger format's hot paths: canonical JSON, the two hashes, signing and verifying,
//! sealing and whole-ledger verification. Run with `cargo bench -p docketops-ledger-core`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signature, VerifyingKey};
use ledger_core::entry::canonical_event;
use ledger_core::hash::{self, Digest};
use ledger_core::json::{self, Numbers};
use ledger_core::keys::signature_message;
use ledger_core::verify::verify_entries;
use ledger_core::{ChainHead, Entry, LedgerSigningKey, NewEvent, PreparedEvent, VerifyOptions, seal};
use serde_json::{Value, json};

/// A payload of the kind the gateway writes for an action, about 600 bytes in canonical form.
fn payload(n: u64) -> Value {
    json!({
        "request": {
            "action_type": "SCALE",
            "namespace": "staging",
            "resource_kind": "Deployment",
            "resource_name": format!("web-api-{n}"),
            "parameters": {"replicas": 5, "strategy": {"max_surge": 1, "max_unavailable": 0}},
            "justification": "Scale up for the nightly load test (CHG-20931)",
        },
        "request_digest": "sha256:9e6379b6f177416052dea11749f36a333392b3e284d8a5b0f01ada890ff1ec76",
        "identity": {"id": "agt_deploy-bot", "kind": "agent", "roles": ["operator"], "trust": 87},
        "risk": {"level": "MEDIUM", "rules": ["replica_change_gt_2", "namespace_tier_staging"]},
        "decision": {"outcome": "allow", "mode": "enforce", "policy": "docketops/default", "revision": 42},
        "labels": {"région": "eu-west-3"},
        "sequence": n,
    })
}

fn prepared(key: &LedgerSigningKey, count: u64) -> Vec<PreparedEvent> {
    let genesis = std::iter::once(NewEvent::genesis(&key.public_key(), "usr_admin"));
    let notes = (2..=count)
        .map(|n| NewEvent::new("action.requested", "agt_deploy-bot", payload(n)).with_action(format!("act_{n}")));
    genesis
        .chain(notes)
        .zip(1u64..)
        .map(|(event, n)| {
            PreparedEvent::prepare_with_id(event, format!("evt_{n:032x}"), "2026-01-01T00:00:00.000000Z".into())
                .expect("a valid event")
        })
        .collect()
}

fn ledger(key: &LedgerSigningKey, count: u64) -> Vec<Entry> {
    seal(&ChainHead::EMPTY, prepared(key, count), key)
}

fn benches(c: &mut Criterion) {
    let key = LedgerSigningKey::from_seed([7; 32]);
    let public = key.public_key();

    let value = payload(1);
    let canonical = json::canonicalize(&value).unwrap();
    assert!(
        (550..=700).contains(&canonical.len()),
        "payload is {} bytes",
        canonical.len()
    );
    let pretty = serde_json::to_string_pretty(&value).unwrap();

    let mut group = c.benchmark_group("canonical_json");
    group.throughput(Throughput::Bytes(canonical.len() as u64));
    group.bench_function("canonicalize_value_600B", |b| {
        b.iter(|| json::canonicalize(black_box(&value)).unwrap())
    });
    group.bench_function("parse_and_canonicalize_600B", |b| {
        b.iter(|| json::canonicalize_text(black_box(&pretty), Numbers::SafeIntegers).unwrap())
    });
    group.finish();

    let event = canonical_event(
        "evt_0194a1b2c3d47e5f8a9b0c1d2e3f4a02",
        "2026-01-01T00:00:01.250000Z",
        "action.requested",
        "agt_deploy-bot",
        Some("act_0194a1b2c3d4"),
        &canonical,
    );
    let event_hash = hash::event_hash(event.as_bytes());
    let prev = Digest::of(b"previous");
    let chain = hash::chain_hash(2, &prev, &event_hash);

    let mut group = c.benchmark_group("hashes");
    group.bench_function("event_hash", |b| {
        b.iter(|| hash::event_hash(black_box(event.as_bytes())))
    });
    group.bench_function("chain_hash", |b| {
        b.iter(|| hash::chain_hash(black_box(2), black_box(&prev), black_box(&event_hash)))
    });
    group.finish();

    let signature = key.sign_chain_hash(&chain);
    let mut group = c.benchmark_group("signatures");
    group.bench_function("sign_one_entry", |b| b.iter(|| key.sign_chain_hash(black_box(&chain))));
    group.bench_function("verify_strict_one", |b| {
        b.iter(|| assert!(public.verify(black_box(&chain), black_box(&signature))))
    });

    // The verifier's fast path: one Ed25519 batch of 64 entry signatures.
    let chains: Vec<Digest> = (0..64u64)
        .map(|i| hash::chain_hash(i + 1, &prev, &event_hash))
        .collect();
    let messages: Vec<Vec<u8>> = chains.iter().map(|c| signature_message(key.key_id(), c)).collect();
    let signatures: Vec<Signature> = chains.iter().map(|c| key.sign_chain_hash(c)).collect();
    let keys: Vec<VerifyingKey> = vec![public.key; 64];
    group.throughput(Throughput::Elements(64));
    group.bench_function("verify_batch_64", |b| {
        b.iter(|| {
            let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            ed25519_dalek::verify_batch(black_box(&messages), black_box(&signatures), black_box(&keys)).unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("ledger");
    group.sample_size(20);
    let events = prepared(&key, 64);
    group.throughput(Throughput::Elements(64));
    group.bench_function("seal_64", |b| {
        b.iter_batched(
            || events.clone(),
            |events| seal(&ChainHead::EMPTY, events, &key),
            BatchSize::SmallInput,
        )
    });
    let entries = ledger(&key, 1000);
    assert!(verify_entries(&entries, VerifyOptions::default()).valid);
    group.throughput(Throughput::Elements(1000));
    group.bench_function("verify_entries_1000", |b| {
        b.iter(|| {
            let report = verify_entries(black_box(&entries), VerifyOptions::default());
            assert!(report.valid);
            report
        })
    });
    group.finish();
}

criterion_group!(ledger_benches, benches);
criterion_main!(ledger_benches);

//! Issue 14: the gateway's cost per request must not grow with history. A seeded ledger (PostgreSQL: over a
//! million entries and a hundred thousand actions; SQLite: a smaller one) and the plan of every per-request
//! statement (`storage::hot_paths`, the text the `Store` functions and the appender's trust fold run): none
//! reads a table that grows with the ledger (`ledger_entries`, `actions`, `trust_changes`, `trust_actions`,
//! `trust_scores`, and the transparency log's `tlog_tiles`, `tlog_checkpoints`, `tlog_cosignatures`) whole. Also the seeding itself: verifiable entries and rows that match them.

use std::time::Instant;

use ledger_core::{LedgerSigningKey, VerifyOptions};
use storage::hot_paths::{self, Plan};
use storage::seed::{SeedConfig, seed_history};
use storage::{ActionFilter, AppendConfig, CheckpointRow, CosignatureRow, Ledger, Store, TimelineFilter};

fn admin_url() -> String {
    std::env::var("DOCKETOPS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A migrated database of one backend for one test; the PostgreSQL one is dropped by `done`.
struct Db {
    store: Store,
    url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    async fn new(backend: &str, test: &str) -> Db {
        let (url, pg_name, dir) = if backend == "sqlite" {
            let dir = tempfile::tempdir().unwrap();
            (
                format!("sqlite://{}", dir.path().join("ledger.db").display()),
                None,
                Some(dir),
            )
        } else {
            let name = format!("dkt_test_{test}_{}", std::process::id());
            let url = storage::create_postgres_database(&admin_url(), &name)
                .await
                .expect("PostgreSQL must be running for the storage tests (see README)");
            (url, Some(name), None)
        };
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        Db {
            store,
            url,
            pg_name,
            _dir: dir,
        }
    }

    async fn done(self) {
        self.store.close().await;
        if let Some(name) = &self.pg_name {
            storage::drop_postgres_database(&admin_url(), name).await.unwrap();
        }
    }
}

fn writer(store: &Store) -> Ledger {
    let config = AppendConfig {
        max_batch: 4096,
        ..AppendConfig::default()
    };
    Ledger::start(store.clone(), LedgerSigningKey::generate(), config)
}

/// Seeds `actions` actions (and a tenth as many identities, at least `min_identities`), printing timings.
async fn seed(store: &Store, ledger: &Ledger, actions: u64, min_identities: u64) -> u64 {
    let mut config = SeedConfig::new(actions);
    config.identities = config.identities.max(min_identities);
    let summary = seed_history(store, ledger, &config, &|_| {}).await.unwrap();
    println!(
        "seeded {} identities, {} actions, {} entries in {:.1} s ({:.0} entries/s)",
        summary.written.identities,
        summary.written.actions,
        summary.written.entries,
        summary.elapsed.as_secs_f64(),
        summary.entries_per_second()
    );
    summary.written.entries
}

#[tokio::test]
async fn seeded_history_verifies_and_its_rows_match_its_entries_sqlite() {
    seeded_history_verifies_and_its_rows_match_its_entries("sqlite").await;
}

#[tokio::test]
async fn seeded_history_verifies_and_its_rows_match_its_entries_postgres() {
    seeded_history_verifies_and_its_rows_match_its_entries("postgres").await;
}

async fn seeded_history_verifies_and_its_rows_match_its_entries(backend: &str) {
    let db = Db::new(backend, "seed_small").await;
    let ledger = writer(&db.store);
    ledger.initialize().await.unwrap();
    // Twice: a second run appends to a ledger that is not empty, with ids of its own.
    let first = seed(&db.store, &ledger, 300, 20).await;
    let second = seed(&db.store, &ledger, 200, 20).await;
    let report = storage::verify_ledger(&db.store, VerifyOptions::default(), |_| {})
        .await
        .unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries_checked, 1 + first + second);

    let all = ActionFilter {
        limit: 1000,
        ..ActionFilter::default()
    };
    let actions = db.store.actions(&all).await.unwrap();
    assert_eq!(actions.len(), 500);
    let mut statuses = std::collections::BTreeSet::new();
    for action in &actions {
        let entries = db.store.entries_of_action(&action.id).await.unwrap();
        assert_eq!(entries[0].kind, "action.requested");
        assert_eq!(entries[0].actor, action.identity_id);
        assert_eq!(
            action.last_entry_id.as_deref(),
            Some(entries.last().unwrap().id.as_str())
        );
        assert_eq!(action.created_at, entries[0].timestamp);
        let last = entries.last().unwrap().kind.as_str();
        let expected = match action.status.as_str() {
            "COMPLETED" => &["outcome.verified", "action.executed"][..],
            "FAILED" => &["outcome.verified", "action.failed"][..],
            "DENIED" => &["policy.decided"][..],
            "PENDING_APPROVAL" => &["approval.requested"][..],
            "EXPIRED" => &["approval.expired"][..],
            "REJECTED" => &["approval.denied"][..],
            other => panic!("unexpected status {other}"),
        };
        assert!(expected.contains(&last), "{} ends with {last}", action.status);
        statuses.insert(action.status);
        assert!(db.store.identity(&action.identity_id).await.unwrap().is_some());
        if let Some(digest) = &action.approval_digest {
            let approvals = db.store.approvals_of(&action.id, digest).await.unwrap();
            let decided = entries
                .iter()
                .any(|e| e.kind == "approval.granted" || e.kind == "approval.denied");
            assert_eq!(approvals.len(), usize::from(decided));
        }
    }
    assert!(statuses.len() >= 5, "a mix of outcomes: {statuses:?}");
    let identities = db.store.identities_page(None, 1000).await.unwrap();
    assert_eq!(identities.len(), 50);
    db.done().await;
}

fn assert_no_full_scans(plans: &[Plan]) {
    let offending: Vec<String> = plans
        .iter()
        .filter(|plan| !plan.full_scans().is_empty())
        .map(|plan| format!("{}:\n{}\n{}", plan.name, plan.sql, plan.plan))
        .collect();
    assert!(offending.is_empty(), "full scans:\n\n{}", offending.join("\n\n"));
}

async fn plans(store: &Store) -> (Vec<Plan>, Vec<Plan>) {
    let samples = store.hot_path_samples().await.unwrap();
    let mut custom = Vec::new();
    let mut generic = Vec::new();
    for path in hot_paths::hot_paths(&samples) {
        custom.push(store.explain(&path).await.unwrap());
        generic.extend(store.explain_generic(&path).await.unwrap());
    }
    for plan in &custom {
        println!("{}: {}", plan.name, plan.plan.replace('\n', " | "));
    }
    (custom, generic)
}

#[tokio::test]
async fn hot_paths_use_indexes_sqlite() {
    let db = Db::new("sqlite", "hot_paths").await;
    let ledger = writer(&db.store);
    let started = Instant::now();
    seed(&db.store, &ledger, 20_000, 2_000).await;
    seed_checkpoints(&db.store, 1_000).await;
    db.store.analyze().await.unwrap();
    let (custom, _) = plans(&db.store).await;
    assert_no_full_scans(&custom);
    println!("sqlite: {:.1} s in all", started.elapsed().as_secs_f64());
    db.done().await;
}

/// Over a million entries and a hundred thousand actions on PostgreSQL: every statement's plan (with its
/// parameters, and the generic plan a prepared statement may settle on) avoids sequential scans of the tables
/// that grow with the ledger, and running the `Store` functions themselves adds no sequential scan to PostgreSQL's counters.
#[tokio::test]
async fn hot_paths_use_indexes_postgres() {
    let started = Instant::now();
    // A database seeded before (`docketops seed-history --actions 212000`) saves the seeding while
    // working on the statements.
    let (db, reused) = match std::env::var("DOCKETOPS_HOT_PATHS_DATABASE_URL") {
        Ok(url) => (
            Db {
                store: Store::connect(&url).await.unwrap(),
                url,
                pg_name: None,
                _dir: None,
            },
            true,
        ),
        Err(_) => (Db::new("postgres", "hot_paths").await, false),
    };
    if !reused {
        let ledger = writer(&db.store);
        seed(&db.store, &ledger, 212_000, 21_200).await;
    }
    if db.store.latest_checkpoint().await.unwrap().is_none() {
        seed_checkpoints(&db.store, 1_000).await;
    }
    let entries = db.store.entry_count().await.unwrap();
    let actions = db.store.action_count().await.unwrap();
    assert!(
        entries >= 1_000_000 && actions >= 100_000,
        "{entries} entries, {actions} actions"
    );
    let analyzed = Instant::now();
    db.store.analyze().await.unwrap();
    println!("ANALYZE: {:.1} s", analyzed.elapsed().as_secs_f64());

    let (custom, generic) = plans(&db.store).await;
    assert_no_full_scans(&custom);
    assert_no_full_scans(&generic);
    println!("{} statements planned twice each", custom.len());

    // A session's counters reach the statistics when it ends (or a while after it went idle), so the exercise
    // runs on connections of its own, opened after the reset and closed before the counters are read: nothing
    // from before counts, and nothing of it is missed.
    db.store.close().await;
    let settle = || tokio::time::sleep(std::time::Duration::from_millis(500));
    settle().await;
    let fresh = Store::connect(&db.url).await.unwrap();
    fresh.reset_statistics().await.unwrap();
    exercise(&fresh).await;
    fresh.close().await;
    settle().await;
    let reader = Store::connect(&db.url).await.unwrap();
    let scans = reader.sequential_scans().await.unwrap().unwrap();
    reader.close().await;
    assert_eq!(scans.len(), hot_paths::GROWING_TABLES.len());
    assert!(scans.iter().all(|(_, n)| *n == 0), "sequential scans: {scans:?}");
    println!("postgres: {:.1} s in all", started.elapsed().as_secs_f64());
    db.done().await;
}

/// Runs the `Store` functions of the per-request paths, several times each (so prepared statements may
/// switch to their generic plans).
async fn exercise(store: &Store) {
    let s = store.hot_path_samples().await.unwrap();
    for _ in 0..7 {
        let key = store.key_by_digest(&s.key_digest).await.unwrap();
        assert!(key.is_some());
        store.identity(&s.identity_id).await.unwrap().unwrap();
        let page = store.identities_page(None, 100).await.unwrap();
        store.identities_page(Some(&page[99].id), 100).await.unwrap();
        store.keys_of(&s.identity_id).await.unwrap();
        store.action(&s.action_id).await.unwrap().unwrap();
        for (identity, status, namespace) in [
            (false, false, false),
            (true, false, false),
            (false, true, false),
            (false, false, true),
        ] {
            let filter = ActionFilter {
                identity_id: identity.then(|| s.identity_id.clone()),
                status: status.then(|| "PENDING_APPROVAL".into()),
                namespace: namespace.then(|| s.namespace.clone()),
                before: Some(s.action_id.clone()),
                limit: 100,
            };
            store.actions(&filter).await.unwrap();
        }
        store.due_approvals(&s.now, 1000).await.unwrap();
        store.entries_of_action(&s.action_id).await.unwrap();
        store.entry_by_id(&s.entry_id).await.unwrap().unwrap();
        store.head().await.unwrap().unwrap();
        store.entries_after(s.seq / 2, 1000).await.unwrap();
        store.export_cursor("siem").await.unwrap();
        store.controllers_of(&s.identity_id).await.unwrap();
        store.action_by_idempotency_key(&s.identity_id, "idem").await.unwrap();
        store.unfinished_actions("gwi_x", &s.now, &s.now, 100).await.unwrap();
        for filter in timeline_filters(&s) {
            store.timeline(&filter).await.unwrap();
        }
        store.trust_score(&s.identity_id).await.unwrap();
        let changes = store.trust_changes(&s.identity_id, None, 50).await.unwrap();
        let older = changes.last().map_or(s.seq as u64 / 2, |c| c.seq);
        store.trust_changes(&s.identity_id, Some(older), 50).await.unwrap();
        let caught_up = store.trust_catch_up(|_| {}).await.unwrap();
        assert_eq!(caught_up.folded_seq, caught_up.head_seq);
        exercise_tlog(store).await;
    }
}

/// The transparency log's reads: the appender's and the API's (tiles, bundles, roots, proofs, checkpoints,
/// receipts' checkpoint, witness sizes).
async fn exercise_tlog(store: &Store) {
    let size = store.tree_size().await.unwrap();
    assert!(size > 1000, "the seeded tree holds {size} entries");
    assert!(store.tile(0, size / 512).await.unwrap().is_some());
    assert!(store.entry_bundle(size / 512, 256).await.unwrap().is_some());
    store.tree_root(size).await.unwrap();
    store.inclusion_proof(size, size / 3).await.unwrap();
    store.consistency_proof(size / 2, size).await.unwrap();
    assert_eq!(store.tlog_catch_up(|_| {}).await.unwrap().tree_size, size);
    let latest = store.latest_checkpoint().await.unwrap().unwrap();
    store.checkpoint_covering(size / 2).await.unwrap().unwrap();
    store.checkpoints_before(Some(latest.size as u64), 100).await.unwrap();
    let witnesses = [WITNESSES[0].to_string(), WITNESSES[1].to_string()];
    store.latest_cosigned_checkpoint(&witnesses, 2).await.unwrap();
}

const WITNESSES: [&str; 2] = ["witness.example/w1", "witness.example/w2"];

/// A checkpoint every `every` entries, each cosigned by two witnesses (rows only: these tests read plans).
async fn seed_checkpoints(store: &Store, every: u64) {
    // A database seeded by an older release has entries but no tree yet.
    let size = store.tlog_catch_up(|_| {}).await.unwrap().tree_size;
    for at in (every..=size).step_by(every as usize) {
        let root = store.tree_root(at).await.unwrap();
        let row = CheckpointRow {
            size: at as i64,
            root_hash: ledger_core::tlog::hash_to_base64(&root),
            note: format!("seeded\n{at}\n"),
            key_id: "seeded".into(),
            created_at: "2026-01-01T00:00:00.000000Z".into(),
        };
        store.insert_checkpoint(&row).await.unwrap();
        for witness in WITNESSES {
            let line = format!("— {witness} seeded");
            let cosignature = CosignatureRow {
                size: at as i64,
                witness: witness.into(),
                line,
                received_at: row.created_at.clone(),
            };
            store.insert_cosignature(&cosignature).await.unwrap();
        }
    }
}

fn timeline_filters(s: &hot_paths::Samples) -> Vec<TimelineFilter> {
    let base = TimelineFilter {
        limit: 50,
        ..TimelineFilter::default()
    };
    vec![
        base.clone(),
        TimelineFilter {
            before_seq: Some(s.seq / 2),
            ..base.clone()
        },
        TimelineFilter {
            identity: Some(s.identity_id.clone()),
            ..base.clone()
        },
        TimelineFilter {
            namespace: Some(s.namespace.clone()),
            ..base.clone()
        },
        TimelineFilter {
            kind: Some("approval.granted".into()),
            ..base.clone()
        },
        TimelineFilter {
            status: Some("FAILED".into()),
            ..base.clone()
        },
        TimelineFilter {
            risk: Some("HIGH".into()),
            ..base
        },
    ]
}

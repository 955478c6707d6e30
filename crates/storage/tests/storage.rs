//! Storage against real databases: a SQLite file per test and a PostgreSQL database per test (the
//! server at DOCKETOPS_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres).

use std::collections::BTreeSet;

use ledger_core::keys::signature_to_hex;
use ledger_core::{Entry, LedgerSigningKey, NewEvent, Reason, VerifyOptions, VerifyReport};
use serde_json::json;
use storage::{AppendConfig, AppendError, Ledger, Store, tamper};

/// A database for one test, removed when dropped (PostgreSQL) or with its temp dir (SQLite).
struct TestDb {
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

fn admin_url() -> String {
    std::env::var("DOCKETOPS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

impl TestDb {
    async fn new(backend: &str, test: &str) -> TestDb {
        match backend {
            "sqlite" => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            _ => {
                let name = format!("dkt_test_{}_{}", &test[..test.len().min(36)], std::process::id());
                let url = storage::create_postgres_database(&admin_url(), &name)
                    .await
                    .expect("PostgreSQL must be running for the storage tests (see README)");
                TestDb {
                    url,
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }

    async fn store(&self) -> Store {
        let store = Store::connect(&self.url).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    async fn drop_db(self) {
        if let Some(name) = &self.pg_name {
            storage::drop_postgres_database(&admin_url(), name).await.unwrap();
        }
    }
}

fn note(i: u64) -> NewEvent {
    NewEvent::new("ledger.note", "tester", json!({"n": i, "replicas": 3, "text": "héllo"}))
}

async fn verify(store: &Store) -> VerifyReport {
    storage::verify_ledger(store, VerifyOptions::default(), |_| {})
        .await
        .unwrap()
}

/// Genesis plus notes up to seq `len`.
async fn ledger_of(store: &Store, key: LedgerSigningKey, len: u64) -> Ledger {
    let ledger = Ledger::start(store.clone(), key, AppendConfig::default());
    ledger.append_all((2..=len).map(note).collect()).await.unwrap();
    ledger
}

fn assert_invalid(report: &VerifyReport, seq: u64, reason: Reason) {
    let invalid = report
        .first_invalid
        .as_ref()
        .unwrap_or_else(|| panic!("expected invalid, got {report:?}"));
    assert_eq!((invalid.seq, invalid.reason), (seq, reason), "{invalid:?}");
    assert!(!report.valid);
    assert_eq!(report.entries_checked, seq - 1);
}

/// Runs each test body once on SQLite and once on PostgreSQL.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = TestDb::new("sqlite", stringify!($name)).await;
                super::$name(&db).await;
                db.drop_db().await;
            })*
        }
        mod postgres {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let db = TestDb::new("postgres", stringify!($name)).await;
                super::$name(&db).await;
                db.drop_db().await;
            })*
        }
    };
}

async fn concurrent_appends_are_gap_free(db: &TestDb) {
    let store = db.store().await;
    let ledger = Ledger::start(store.clone(), LedgerSigningKey::generate(), AppendConfig::default());
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..32u64 {
        let ledger = ledger.clone();
        tasks.spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..25 {
                seqs.push(ledger.append(note(writer * 1000 + i)).await.unwrap().seq);
            }
            seqs
        });
    }
    let mut seqs = BTreeSet::new();
    while let Some(result) = tasks.join_next().await {
        for seq in result.unwrap() {
            assert!(seqs.insert(seq), "seq {seq} handed out twice");
        }
    }
    // The genesis entry is seq 1; the 800 appends fill 2..=801 with no gap.
    assert_eq!(seqs, (2..=801).collect());
    let stats = ledger.stats();
    assert_eq!(stats.entries, 801);
    assert!(
        stats.transactions < 801,
        "group commit should batch concurrent appends: {stats:?}"
    );
    let report = verify(&store).await;
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries_checked, 801);
    assert_eq!(store.entry_count().await.unwrap(), 801);
}

async fn two_ledgers_on_one_database_do_not_fork(db: &TestDb) {
    // Two writers with their own pools, as two gateway processes would have; one shared key.
    let key_pem = LedgerSigningKey::generate().to_pkcs8_pem().unwrap();
    let a = db.store().await;
    let b = db.store().await;
    let la = Ledger::start(
        a.clone(),
        LedgerSigningKey::from_pkcs8_pem(&key_pem).unwrap(),
        AppendConfig::default(),
    );
    let lb = Ledger::start(
        b.clone(),
        LedgerSigningKey::from_pkcs8_pem(&key_pem).unwrap(),
        AppendConfig::default(),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16u64 {
        let ledger = if i % 2 == 0 { la.clone() } else { lb.clone() };
        tasks.spawn(async move {
            for j in 0..20 {
                ledger.append(note(i * 100 + j)).await.unwrap();
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    let report = verify(&a).await;
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries_checked, 321);
}

async fn invalid_events_write_nothing(db: &TestDb) {
    let store = db.store().await;
    let ledger = ledger_of(&store, LedgerSigningKey::generate(), 3).await;
    let bad = [
        NewEvent::new("ledger.note", "x", json!({"ratio": 0.5})),
        NewEvent::new("ledger.note", "x", json!({"big": 9_007_199_254_740_992u64})),
        NewEvent::new("Robert'); DROP TABLE ledger_entries;--", "x", json!({})),
        NewEvent::new("ledger.note", "x", json!(["not", "an", "object"])),
    ];
    for event in bad {
        assert!(matches!(ledger.append(event).await, Err(AppendError::Invalid(_))));
    }
    // A batch with one bad event is refused whole.
    let mixed = vec![note(1), NewEvent::new("ledger.note", "x", json!({"f": 1.5}))];
    assert!(ledger.append_all(mixed).await.is_err());
    // Injection strings in values are stored verbatim, as data.
    let sneaky = ledger
        .append(NewEvent::new(
            "ledger.note",
            "'; DELETE FROM ledger_entries; --",
            json!({"q": "' OR 1=1 --"}),
        ))
        .await
        .unwrap();
    assert_eq!(sneaky.seq, 4);
    assert_eq!(store.entry_by_id(&sneaky.id).await.unwrap().unwrap(), sneaky);
    assert!(verify(&store).await.valid);
}

async fn entries_survive_reconnect_and_are_append_only(db: &TestDb) {
    let store = db.store().await;
    let ledger = ledger_of(&store, LedgerSigningKey::generate(), 5).await;
    let head = ledger.append(note(6)).await.unwrap();
    store.close().await;
    let store = db.store().await;
    assert_eq!(store.head().await.unwrap().unwrap(), head);
    assert_eq!(
        store
            .entries_after(2, 2)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        [3, 4]
    );
    let error = tamper::try_plain_update(&store, 3).await.unwrap_err();
    assert!(error.to_string().contains("append-only"), "{error}");
}

async fn rotation_keeps_old_entries_verifiable(db: &TestDb) {
    let store = db.store().await;
    let old_pem = LedgerSigningKey::generate().to_pkcs8_pem().unwrap();
    let ledger = ledger_of(&store, LedgerSigningKey::from_pkcs8_pem(&old_pem).unwrap(), 4).await;
    let next = LedgerSigningKey::generate();
    let next_id = next.key_id().to_string();
    let rotation = ledger.rotate(next, "tester").await.unwrap();
    assert_eq!(rotation.seq, 5);
    assert_eq!(rotation.kind, "ledger.key_rotated");
    let after = ledger.append(note(6)).await.unwrap();
    assert_eq!(after.key_id, next_id);
    let report = verify(&store).await;
    assert!(report.valid, "{report:?}");
    assert_eq!(report.keys.len(), 2);
    assert_eq!(report.keys[0].retired_seq, Some(5));
    assert_eq!(store.keys().await.unwrap().len(), 2);
    assert_eq!(
        store.next_signing_key_id().await.unwrap().as_deref(),
        Some(next_id.as_str())
    );
    // A gateway still holding the old key can no longer write.
    let stale = Ledger::start(
        store.clone(),
        LedgerSigningKey::from_pkcs8_pem(&old_pem).unwrap(),
        AppendConfig::default(),
    );
    assert!(matches!(
        stale.append(note(7)).await,
        Err(AppendError::KeyNotActive { .. })
    ));
    assert_eq!(store.head().await.unwrap().unwrap().seq, 6);
}

/// Builds a tampered copy of one stored entry.
async fn stored(store: &Store, seq: u64) -> Entry {
    store.entries_after(seq as i64 - 1, 1).await.unwrap().remove(0)
}

async fn tampering_is_caught_at_the_right_entry(db: &TestDb) {
    let key = LedgerSigningKey::from_seed([9; 32]);
    let foreign = LedgerSigningKey::from_seed([66; 32]);
    // Each case on a fresh ledger of 10 entries in its own table state: rebuild between cases.
    type Case = (&'static str, u64, Reason);
    let cases: [Case; 9] = [
        ("payload byte", 5, Reason::PayloadChanged),
        ("non-canonical payload", 5, Reason::NotCanonical),
        ("deleted row", 5, Reason::EntryMissing),
        ("swapped rows", 5, Reason::BrokenLink),
        ("signature from another entry", 5, Reason::BadSignature),
        (
            "re-signed with another key under the same key id",
            5,
            Reason::BadSignature,
        ),
        ("re-signed with another key and its key id", 5, Reason::UnknownKey),
        ("forged entry appended under a foreign key", 11, Reason::UnknownKey),
        ("forged entry appended with our key id", 11, Reason::BadSignature),
    ];
    for (case, seq, reason) in cases {
        let store = db.store().await;
        reset(&store).await;
        let _ledger = ledger_of(&store, LedgerSigningKey::from_seed([9; 32]), 10).await;
        assert!(verify(&store).await.valid);
        let entry = stored(&store, 5).await;
        match case {
            "payload byte" => {
                assert!(entry.payload.contains("\"replicas\":3"));
                let changed = entry.payload.replace("\"replicas\":3", "\"replicas\":4");
                tamper::set_column(&store, 5, "payload", &changed).await.unwrap();
            }
            "non-canonical payload" => {
                let spaced = entry.payload.replacen(':', ": ", 1);
                tamper::set_column(&store, 5, "payload", &spaced).await.unwrap();
            }
            "deleted row" => assert_eq!(tamper::delete(&store, 5).await.unwrap(), 1),
            "swapped rows" => tamper::swap(&store, 5, 6).await.unwrap(),
            "signature from another entry" => {
                let other = stored(&store, 6).await;
                tamper::set_column(&store, 5, "signature", &other.signature)
                    .await
                    .unwrap();
            }
            "re-signed with another key under the same key id" => {
                let chain = entry.chain_hash.parse().unwrap();
                let message = ledger_core::keys::signature_message(&entry.key_id, &chain);
                let signature =
                    ed25519_dalek::Signer::sign(&ed25519_dalek::SigningKey::from_bytes(&[66; 32]), &message);
                tamper::set_column(&store, 5, "signature", &signature_to_hex(&signature))
                    .await
                    .unwrap();
            }
            "re-signed with another key and its key id" => {
                let chain = entry.chain_hash.parse().unwrap();
                let signature = foreign.sign_chain_hash(&chain);
                tamper::set_column(&store, 5, "key_id", foreign.key_id()).await.unwrap();
                tamper::set_column(&store, 5, "signature", &signature_to_hex(&signature))
                    .await
                    .unwrap();
            }
            "forged entry appended under a foreign key" | "forged entry appended with our key id" => {
                let head = store.head().await.unwrap().unwrap();
                let prepared = ledger_core::PreparedEvent::prepare(note(99), time::OffsetDateTime::now_utc()).unwrap();
                let mut forged =
                    ledger_core::seal(&ledger_core::chain::head_of(&head).unwrap(), vec![prepared], &foreign).remove(0);
                if case.ends_with("our key id") {
                    forged.key_id = key.key_id().to_string();
                }
                tamper::insert(&store, &forged).await.unwrap();
            }
            _ => unreachable!(),
        }
        let report = verify(&store).await;
        assert_invalid(&report, seq, reason);
        let strict = storage::verify_ledger(
            &store,
            VerifyOptions {
                strict_signatures: true,
                ..Default::default()
            },
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(
            strict.first_invalid, report.first_invalid,
            "{case}: strict and batch disagree"
        );
    }
}

/// Empties the ledger tables between tamper cases.
async fn reset(store: &Store) {
    for seq in (1..=20).rev() {
        let _ = tamper::delete(store, seq).await;
    }
    tamper::clear_keys(store).await.unwrap();
}

async fn export_bundle_verifies_offline(db: &TestDb) {
    let store = db.store().await;
    let _ledger = ledger_of(&store, LedgerSigningKey::generate(), 50).await;
    let mut bundle = Vec::new();
    let summary = storage::write_bundle(&store, &mut bundle, |_| {}).await.unwrap();
    assert_eq!(summary.entries, 50);
    let text = String::from_utf8(bundle).unwrap();
    let mut lines = text.lines();
    let header = ledger_core::bundle::BundleHeader::parse(lines.next().unwrap()).unwrap();
    assert_eq!(header.head.as_ref().unwrap().seq, 50);
    let entries: Vec<Entry> = lines
        .map(|l| ledger_core::bundle::parse_entry_line(l).unwrap())
        .collect();
    assert_eq!(entries, store.entries_after(0, 1000).await.unwrap());
    let head = header.head.unwrap();
    let options = VerifyOptions {
        expected_head: Some((head.seq, head.chain_hash)),
        ..Default::default()
    };
    let report = ledger_core::verify::verify_entries(&entries, options.clone());
    assert!(report.valid, "{report:?}");
    // A cut-short bundle is reported as such.
    let report = ledger_core::verify::verify_entries(&entries[..49], options);
    assert_eq!(report.first_invalid.unwrap().reason, Reason::Truncated);
}

fn identity_row(id: &str) -> (storage::IdentityRow, storage::ApiKeyRow) {
    let at = "2026-01-01T00:00:00Z".to_string();
    let identity = storage::IdentityRow {
        id: id.into(),
        name: format!("name-{id}"),
        kind: "agent".into(),
        roles: "[\"operator\"]".into(),
        scopes: "[]".into(),
        status: "active".into(),
        created_at: at.clone(),
        created_by: "tester".into(),
        updated_at: at.clone(),
        member_of: "[]".into(),
        recorded_entry: None,
    };
    let key = storage::ApiKeyRow {
        id: format!("key_of_{id}"),
        identity_id: id.into(),
        digest: format!("sha256:{id}"),
        status: domain::KeyStatus::Active,
        created_at: at,
        revoked_at: None,
        recorded_entry: None,
        issued_by: Some("tester".into()),
    };
    (identity, key)
}

/// A crash after the ledger append but before the row was marked leaves a row the ledger knows: the
/// start-up cleanup keeps it (and marks it); a row whose entry was never written goes.
async fn cleanup_keeps_rows_the_ledger_recorded(db: &TestDb) {
    let store = db.store().await;
    let ledger = ledger_of(&store, LedgerSigningKey::generate(), 1).await;
    let (written, written_key) = identity_row("agt_written");
    let (lost, lost_key) = identity_row("agt_lost");
    store.insert_identity(&written, &written_key).await.unwrap();
    store.insert_identity(&lost, &lost_key).await.unwrap();
    let entry = ledger
        .append(NewEvent::new(
            "identity.created",
            "tester",
            json!({"identity": {"id": "agt_written"}, "key": {"id": "key_of_agt_written"}}),
        ))
        .await
        .unwrap();

    // Rows created after `before` are left alone: another gateway may still be writing their entry.
    assert_eq!(store.remove_stale_unrecorded("2025-01-01T00:00:00Z").await.unwrap(), 0);
    assert_eq!(store.remove_stale_unrecorded("2027-01-01T00:00:00Z").await.unwrap(), 2);
    let kept = store
        .identity("agt_written")
        .await
        .unwrap()
        .expect("the recorded identity stays");
    assert_eq!(kept.recorded_entry.as_deref(), Some(entry.id.as_str()));
    let keys = store.keys_of("agt_written").await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].recorded_entry.as_deref(), Some(entry.id.as_str()));
    assert!(store.identity("agt_lost").await.unwrap().is_none());
    assert!(store.keys_of("agt_lost").await.unwrap().is_empty());
}

/// Who controls an identity: its creator and the issuers of its active, recorded keys; a key a release
/// without `issued_by` wrote names the actor of the entry that recorded it; revoked and unrecorded keys count
/// for nothing.
async fn controllers_are_creators_and_key_issuers(db: &TestDb) {
    let store = db.store().await;
    let ledger = ledger_of(&store, LedgerSigningKey::generate(), 1).await;
    let (admin, admin_key) = identity_row("usr_admin");
    let (mut approver, mut first) = identity_row("usr_approver");
    approver.created_by = "usr_admin".into();
    first.issued_by = Some("usr_admin".into());
    store.insert_identity(&admin, &admin_key).await.unwrap();
    store.insert_identity(&approver, &first).await.unwrap();
    for id in ["usr_admin", "usr_approver"] {
        let entry = ledger
            .append(NewEvent::new("identity.created", "tester", json!({})))
            .await
            .unwrap();
        store.mark_identity_recorded(id, &entry.id).await.unwrap();
    }
    let key = |id: &str, issued_by: Option<&str>| storage::ApiKeyRow {
        id: id.into(),
        digest: format!("sha256:{id}"),
        issued_by: issued_by.map(str::to_owned),
        ..first.clone()
    };
    // Written by an older release (no issuer), recorded by an entry usr_other wrote.
    store.insert_key(&key("key_legacy", None)).await.unwrap();
    let entry = ledger
        .append(NewEvent::new("key.issued", "usr_other", json!({})))
        .await
        .unwrap();
    store.mark_key_recorded("key_legacy", &entry.id).await.unwrap();
    // Revoked, and never recorded: neither is held.
    store.insert_key(&key("key_revoked", Some("usr_gone"))).await.unwrap();
    store.mark_key_recorded("key_revoked", &entry.id).await.unwrap();
    store.revoke_key("key_revoked", "2026-01-01T00:00:00Z").await.unwrap();
    store
        .insert_key(&key("key_unrecorded", Some("usr_ghost")))
        .await
        .unwrap();

    let found: Vec<(String, Option<String>, Option<String>)> = store
        .controllers_of("usr_approver")
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.actor, c.name, c.key_id))
        .collect();
    let admin_name = Some("name-usr_admin".to_owned());
    assert_eq!(
        found,
        [
            ("usr_admin".to_owned(), admin_name.clone(), None),
            ("usr_other".to_owned(), None, Some("key_legacy".to_owned())),
            (
                "usr_admin".to_owned(),
                admin_name,
                Some("key_of_usr_approver".to_owned())
            ),
        ]
    );
    assert!(store.controllers_of("usr_nobody").await.unwrap().is_empty());
}

/// A database a newer release migrated (a migration this one does not know) still starts: migrations only
/// add, so a rollback or a rolling upgrade must not be refused.
async fn a_newer_releases_migrations_are_tolerated(db: &TestDb) {
    let store = db.store().await;
    let url = db.url.clone();
    let insert = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                  VALUES (999999, 'from a newer release', TRUE, X'00', 0)";
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(insert).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(&insert.replace("X'00'", "'\\x00'::bytea"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    store.migrate().await.expect("an unknown newer migration is ignored");
}

/// A window of the last minute for `subject` with `limits`.
fn last_minute(subject: &str, limits: storage::Limits) -> storage::Window {
    storage::Window {
        subject: subject.into(),
        seconds: 60,
        limits,
    }
}

/// Two stores on one database (two gateways), forty reservations at once (so each store batches them) against
/// a budget of seven deletes: exactly seven are admitted, each refusal names the limit, and the counters read
/// them back.
async fn budget_reservations_are_exact_across_gateways(db: &TestDb) {
    let stores = [db.store().await, db.store().await];
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..40 {
        let store = stores[n % 2].clone();
        tasks.spawn(async move {
            let limits = storage::Limits {
                deletes: Some(7),
                ..storage::Limits::default()
            };
            let spend = storage::Spend {
                action_id: format!("act_{n}"),
                at: domain::time::now(),
                object: format!("c/ns/ConfigMap/cm-{}", n % 3),
                delete: true,
                replicas: 0,
            };
            store
                .reserve_budget(vec![last_minute("identity:agt_1", limits)], spend)
                .await
                .unwrap()
        });
    }
    let verdicts = tasks.join_all().await;
    assert_eq!(verdicts.iter().filter(|v| v.is_none()).count(), 7);
    let stats: Vec<_> = stores.iter().map(storage::Store::budget_reservation_stats).collect();
    assert_eq!(stats.iter().map(|s| s.reservations).sum::<u64>(), 40, "{stats:?}");
    assert!(
        stats.iter().map(|s| s.transactions).sum::<u64>() < 40,
        "concurrent reservations share transactions: {stats:?}"
    );
    for refused in verdicts.iter().flatten() {
        assert_eq!(
            (refused.metric, refused.limit, refused.would_be),
            (storage::Metric::Deletes, 7, 8)
        );
        assert_eq!(refused.counted.used.deletes, 7, "{refused:?}");
    }
    let limits = storage::Limits {
        objects: Some(99),
        ..storage::Limits::default()
    };
    let read = stores[0]
        .budget_usage(&[last_minute("identity:agt_1", limits)], &domain::time::now())
        .await
        .unwrap();
    assert_eq!((read[0].used.mutations, read[0].used.deletes), (7, 7));
    assert_eq!(
        read[0].used.objects,
        Some(3),
        "seven deletes of three ConfigMaps: {read:?}"
    );
    assert!(read[0].oldest.is_some());
}

/// Twenty reservations at once (one store, so they share transactions) on ten objects against a limit of four
/// distinct objects: whatever the order, the admitted ones change exactly four objects, and every reservation
/// of one of those four is admitted (changing an object again adds no distinct object).
async fn budget_batches_count_distinct_objects_exactly(db: &TestDb) {
    let store = db.store().await;
    let limits = storage::Limits {
        objects: Some(4),
        ..storage::Limits::default()
    };
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let (store, limits) = (store.clone(), limits.clone());
        tasks.spawn(async move {
            let object = format!("c/ns/Deployment/web-{}", n % 10);
            let spend = storage::Spend {
                action_id: format!("act_{n}"),
                at: domain::time::now(),
                object: object.clone(),
                delete: false,
                replicas: 1,
            };
            let verdict = store
                .reserve_budget(vec![last_minute("global", limits)], spend)
                .await
                .unwrap();
            (object, verdict)
        });
    }
    let verdicts = tasks.join_all().await;
    let changed: std::collections::BTreeSet<&str> = verdicts
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(o, _)| o.as_str())
        .collect();
    assert_eq!(changed.len(), 4, "{verdicts:?}");
    for (object, verdict) in &verdicts {
        assert_eq!(
            verdict.is_none(),
            changed.contains(object.as_str()),
            "{object}: {verdict:?}"
        );
        if let Some(refused) = verdict {
            assert_eq!((refused.metric, refused.would_be), (storage::Metric::Objects, 5));
        }
    }
    let read = store
        .budget_usage(&[last_minute("global", limits)], &domain::time::now())
        .await
        .unwrap();
    assert_eq!(read[0].used.objects, Some(4));
    assert_eq!(
        read[0].used.mutations, 8,
        "two reservations of each of the four objects"
    );
    assert_eq!(read[0].used.replicas, 8);
}

/// One bad reservation (a time that is not RFC 3339) among concurrent ones fails its batch; every reservation of
/// it then runs alone: the bad one gets the error, the others their answers, and the usage counts them once.
async fn a_failed_batch_answers_each_reservation_alone(db: &TestDb) {
    let store = db.store().await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..12 {
        let store = store.clone();
        tasks.spawn(async move {
            let spend = storage::Spend {
                action_id: format!("act_{n}"),
                at: if n == 5 {
                    "yesterday".into()
                } else {
                    domain::time::now()
                },
                object: format!("c/ns/ConfigMap/cm-{n}"),
                delete: false,
                replicas: 0,
            };
            let limits = storage::Limits {
                mutations: Some(100),
                ..storage::Limits::default()
            };
            (
                n,
                store.reserve_budget(vec![last_minute("global", limits)], spend).await,
            )
        });
    }
    for (n, answer) in tasks.join_all().await {
        match answer {
            Err(storage::StorageError::Invalid(why)) => assert_eq!(n, 5, "{why}"),
            Ok(verdict) => assert!(n != 5 && verdict.is_none(), "{n}: {verdict:?}"),
            Err(other) => panic!("{n}: {other}"),
        }
    }
    let read = store
        .budget_usage(
            &[last_minute("global", storage::Limits::default())],
            &domain::time::now(),
        )
        .await
        .unwrap();
    assert_eq!(read[0].used.mutations, 11);
    let stats = store.budget_reservation_stats();
    assert!(
        stats.failed_batches >= 1,
        "a batch failed and its reservations ran alone: {stats:?}"
    );
}

fn spend_at(n: usize, at: &str, object: &str, replicas: i64) -> storage::Spend {
    storage::Spend {
        action_id: format!("act_{n}"),
        at: at.into(),
        object: object.into(),
        delete: n.is_multiple_of(2),
        replicas,
    }
}

/// A window counts only the mutations inside it, from running totals (the rows before the window do not count,
/// whatever their number), a gateway whose clock is behind cannot slip a mutation before the window, distinct
/// objects are counted up to a cap, an object changed before in the window adds no distinct object, and pruning
/// keeps the totals right.
async fn budget_windows_count_from_running_totals(db: &TestDb) {
    let store = db.store().await;
    let window = |seconds: u64, objects| storage::Window {
        subject: "global".into(),
        seconds,
        limits: storage::Limits {
            objects,
            ..storage::Limits::default()
        },
    };
    let read = |windows: Vec<storage::Window>| {
        let store = store.clone();
        async move {
            store
                .budget_usage(&windows, "2026-01-01T10:00:00.000000Z")
                .await
                .unwrap()
        }
    };
    let day = 86_400;
    // Ten mutations a minute apart from 09:00, on objects web-0..web-4 (each twice), 3 replicas each.
    for n in 0..10 {
        let at = format!("2026-01-01T09:{:02}:00.000000Z", n);
        let spend = spend_at(n, &at, &format!("c/ns/Deployment/web-{}", n % 5), 3);
        let verdict = store.reserve_budget(vec![window(day, None)], spend);
        assert_eq!(verdict.await.unwrap(), None);
    }
    // A gateway with a clock 5 minutes behind: stamped at the newest time instead, so it stays in every window
    // that holds the newest.
    let late = spend_at(10, "2026-01-01T09:04:00.000000Z", "c/ns/Deployment/web-9", 1);
    let verdict = store.reserve_budget(vec![window(day, None)], late);
    assert_eq!(verdict.await.unwrap(), None);
    // At 10:00: from 09:06 (54 minutes), everything (10 hours), from 09:59 (1 minute).
    let counted = read(vec![
        window(54 * 60, Some(99)),
        window(36_000, Some(1)),
        window(60, Some(99)),
    ])
    .await;
    // From 09:06: mutations 6..9 and the late one (10); deletes 6, 8 and 10; web-1..web-4 and web-9.
    assert_eq!(counted[0].used.mutations, 5, "{counted:?}");
    assert_eq!(counted[0].used.deletes, 3);
    assert_eq!(counted[0].used.replicas, 4 * 3 + 1);
    assert_eq!(counted[0].used.objects, Some(5));
    assert_eq!(counted[0].oldest.as_deref(), Some("2026-01-01T09:06:00.000000Z"));
    // Everything, with the distinct objects counted up to one past a limit of one.
    assert_eq!((counted[1].used.mutations, counted[1].used.objects), (11, Some(2)));
    // An empty window.
    assert_eq!((counted[2].used.mutations, counted[2].oldest.as_ref()), (0, None));
    // At 09:20, a limit of five objects over 14 minutes (from 09:06): a sixth object is refused; web-4
    // (changed at 09:09) is not new.
    let five = |object: &str| {
        let mut window = window(14 * 60, Some(5));
        window.limits.mutations = Some(100);
        (vec![window], spend_at(11, "2026-01-01T09:20:00.000000Z", object, 0))
    };
    let (windows, spend) = five("c/ns/Deployment/web-new");
    let refused = store
        .reserve_budget(windows, spend)
        .await
        .unwrap()
        .expect("a sixth object");
    assert_eq!(
        (refused.metric, refused.limit, refused.would_be),
        (storage::Metric::Objects, 5, 6)
    );
    assert!(!refused.counted.object_seen);
    // Pruning the rows before 09:05 leaves the window from 09:06 as it was.
    store.prune_budget_usage("2026-01-01T09:05:00.000000Z").await.unwrap();
    let after = read(vec![window(54 * 60, Some(99))]).await;
    assert_eq!(after[0].used, counted[0].used);
    let (windows, spend) = five("c/ns/Deployment/web-4");
    assert_eq!(
        store.reserve_budget(windows, spend).await.unwrap(),
        None,
        "web-4 is no new object"
    );
    let after = read(vec![window(54 * 60, Some(99))]).await;
    assert_eq!((after[0].used.mutations, after[0].used.objects), (6, Some(5)));
}

on_both!(
    budget_windows_count_from_running_totals,
    a_failed_batch_answers_each_reservation_alone,
    budget_batches_count_distinct_objects_exactly,
    a_newer_releases_migrations_are_tolerated,
    controllers_are_creators_and_key_issuers,
    cleanup_keeps_rows_the_ledger_recorded,
    concurrent_appends_are_gap_free,
    two_ledgers_on_one_database_do_not_fork,
    invalid_events_write_nothing,
    entries_survive_reconnect_and_are_append_only,
    rotation_keeps_old_entries_verifiable,
    tampering_is_caught_at_the_right_entry,
    export_bundle_verifies_offline,
    budget_reservations_are_exact_across_gateways,
);

#[path = "storage/trust.rs"]
mod trust;

#[path = "storage/tlog.rs"]
mod tlog;

#[path = "storage/reserving.rs"]
mod reserving;

#[path = "storage/activity.rs"]
mod activity;

//! Budget reservations made with the entries they decide (`Ledger::append_reserving`): two gateways' ledger
//! writers on one database, reservations and plain appends at once, so batches mix admitted, refused and
//! plain commands.

use super::*;

fn deletes_of(n: u64) -> (Vec<storage::Window>, storage::Spend) {
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
    (vec![last_minute("identity:agt_1", limits)], spend)
}

/// Forty reservations against a budget of seven deletes and twenty plain appends, from two writers at once:
/// exactly seven reservations append their two entries and are counted, every other appends only its
/// refusal (told the window it would exceed) and is not counted, plain appends are untouched, and the ledger
/// stays gap-free and valid.
async fn reservations_decide_their_entries_exactly(db: &TestDb) {
    let key = LedgerSigningKey::from_seed([9; 32]);
    let stores = [db.store().await, db.store().await];
    let first = Ledger::start(
        stores[0].clone(),
        LedgerSigningKey::from_seed([9; 32]),
        AppendConfig::default(),
    );
    first.initialize().await.unwrap();
    let ledgers = [first, Ledger::start(stores[1].clone(), key, AppendConfig::default())];
    let mut reserving = tokio::task::JoinSet::new();
    let mut plain = tokio::task::JoinSet::new();
    for n in 0..40u64 {
        let ledger = ledgers[(n % 2) as usize].clone();
        reserving.spawn(async move {
            let (windows, spend) = deletes_of(n);
            let refusal = Box::new(move |exceeded: &storage::Exceeded| {
                NewEvent::new(
                    "ledger.note",
                    "tester",
                    json!({"refused": n, "would_be": exceeded.would_be}),
                )
            });
            let reservation = storage::Reservation {
                windows,
                spend,
                refusal,
            };
            let events = vec![note(n), note(1000 + n)];
            (n, ledger.append_reserving(events, reservation).await.unwrap())
        });
        if n % 2 == 0 {
            let ledger = ledgers[(n / 2 % 2) as usize].clone();
            plain.spawn(async move { (n, ledger.append(note(5000 + n)).await.unwrap()) });
        }
    }
    let (mut admitted, mut refused) = (0, 0);
    for (n, reserved) in reserving.join_all().await {
        match reserved {
            storage::Reserved::Admitted(entries) => {
                admitted += 1;
                let numbers: Vec<_> = entries.iter().map(|e| payload(e)["n"].clone()).collect();
                assert_eq!(numbers, [json!(n), json!(1000 + n)]);
            }
            storage::Reserved::Refused { exceeded, entry } => {
                refused += 1;
                assert_eq!(
                    (exceeded.metric, exceeded.limit, exceeded.would_be),
                    (storage::Metric::Deletes, 7, 8)
                );
                assert_eq!(payload(&entry), json!({"refused": n, "would_be": 8}));
            }
        }
    }
    assert_eq!((admitted, refused), (7, 33));
    for (n, entry) in plain.join_all().await {
        assert_eq!(payload(&entry)["n"], json!(5000 + n), "a plain append keeps its entry");
    }
    let head = stores[0].head().await.unwrap().unwrap();
    assert_eq!(
        head.seq,
        1 + 7 * 2 + 33 + 20,
        "genesis, admitted pairs, refusals, plain notes"
    );
    assert!(verify(&stores[0]).await.valid);
    let limits = storage::Limits {
        deletes: Some(7),
        ..storage::Limits::default()
    };
    let read = stores[1]
        .budget_usage(&[last_minute("identity:agt_1", limits)], &domain::time::now())
        .await
        .unwrap();
    assert_eq!(
        (read[0].used.mutations, read[0].used.deletes),
        (7, 7),
        "only the admitted are counted"
    );
    let stats: Vec<_> = stores.iter().map(storage::Store::budget_reservation_stats).collect();
    assert_eq!(stats.iter().map(|s| s.reservations).sum::<u64>(), 40, "{stats:?}");
}

fn payload(entry: &Entry) -> serde_json::Value {
    serde_json::from_str(&entry.payload).unwrap()
}

on_both!(reservations_decide_their_entries_exactly);

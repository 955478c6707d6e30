//! The overview's counts against the pure function: a mixed history from two gateways, counted by
//! catch-ups that run while it is written and by two at once (PostgreSQL: two pools), then a rebuild
//! after a version change; the reads of a day.

use std::collections::HashMap;

use ledger_core::activity::{ACTIVITY_VERSION, DenialSource, Tally, activity};

use super::trust::{all_entries, mixed_history};
use super::*;

/// What the pure function makes of every entry, summed as the tables sum it.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    hours: HashMap<(String, Tally), u64>,
    requesters: HashMap<String, u64>,
    denials: HashMap<(DenialSource, String), u64>,
}

fn expected(entries: &[Entry]) -> Expected {
    let mut sums = Expected::default();
    for counted in entries.iter().filter_map(activity) {
        *sums.hours.entry((counted.hour.clone(), counted.tally)).or_default() += 1;
        if let Some(requester) = counted.requester {
            *sums.requesters.entry(requester).or_default() += 1;
        }
        if let Some(denial) = counted.denial {
            *sums.denials.entry((denial.source, denial.reason)).or_default() += 1;
        }
    }
    sums
}

async fn stored(store: &Store) -> Expected {
    let day = store.activity_since("0000-00-00T00", 100).await.unwrap();
    assert_eq!(day.progress.folded_seq, day.progress.head_seq, "caught up");
    Expected {
        hours: day.hours.into_iter().map(|c| ((c.hour, c.tally), c.count)).collect(),
        requesters: day.requesters.into_iter().map(|r| (r.key, r.count)).collect(),
        denials: day.denials.into_iter().map(|r| (r.key, r.count)).collect(),
    }
}

async fn assert_counted(store: &Store) {
    let entries = all_entries(store).await;
    let want = expected(&entries);
    assert!(
        want.hours.keys().any(|(_, tally)| *tally == Tally::Denied),
        "the history has denials"
    );
    assert!(want.requesters.len() > 5, "{:?}", want.requesters);
    assert_eq!(stored(store).await, want);
}

async fn activity_counts_equal_the_recomputation(db: &TestDb) {
    let store = db.store().await;
    let other = db.store().await;
    let key = LedgerSigningKey::from_seed([4; 32]);
    let ledger = Ledger::start(store.clone(), key, AppendConfig::default());
    ledger.initialize().await.unwrap();
    let ledgers = [
        ledger.clone(),
        Ledger::start(
            other.clone(),
            LedgerSigningKey::from_seed([4; 32]),
            AppendConfig::default(),
        ),
    ];

    // Catch-ups while the history is written, from both stores: each entry is counted once.
    let writing = tokio::spawn({
        let ledgers = ledgers.clone();
        async move { mixed_history(&ledgers, 0, 6, 60).await }
    });
    let mut folds = tokio::task::JoinSet::new();
    for fold_store in [store.clone(), other.clone()] {
        folds.spawn(async move {
            for _ in 0..20 {
                fold_store.activity_catch_up(|_| {}).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        });
    }
    writing.await.unwrap();
    while let Some(done) = folds.join_next().await {
        done.unwrap();
    }
    let (a, b) = tokio::join!(store.activity_catch_up(|_| {}), other.activity_catch_up(|_| {}));
    assert_eq!(a.unwrap().folded_seq, b.unwrap().folded_seq);
    assert_counted(&store).await;

    // Up to date: one lookup, no page.
    let mut pages = 0;
    store.activity_catch_up(|_| pages += 1).await.unwrap();
    assert_eq!(pages, 0);

    // An older version's counts are rebuilt from the first entry; a newer one's are left alone.
    tamper::set_activity_version(&store, ACTIVITY_VERSION - 1)
        .await
        .unwrap();
    let rebuilt = store.activity_catch_up(|_| pages += 1).await.unwrap();
    assert!(
        pages >= 1 && rebuilt.folded_seq == rebuilt.head_seq,
        "{pages} {rebuilt:?}"
    );
    assert_counted(&store).await;
    tamper::set_activity_version(&store, ACTIVITY_VERSION + 1)
        .await
        .unwrap();
    mixed_history(&ledgers[..1], 1, 1, 3).await;
    let left = store.activity_catch_up(|_| {}).await.unwrap();
    assert!(
        left.folded_seq < left.head_seq,
        "a newer release's counts are not touched: {left:?}"
    );
    tamper::set_activity_version(&store, ACTIVITY_VERSION).await.unwrap();
    store.activity_catch_up(|_| {}).await.unwrap();
    assert_counted(&store).await;

    // The reads of a day: the hours from the one asked for, the top requesters (most first) and the first
    // entry of the day, whose score before it the trust trend starts from.
    let this_hour = all_entries(&store).await.last().unwrap().timestamp[..13].to_owned();
    let day = store.activity_since(&this_hour, 3).await.unwrap();
    assert!(day.hours.iter().all(|c| c.hour >= this_hour));
    assert_eq!(day.requesters.len(), 3);
    assert!(day.requesters.windows(2).all(|w| w[0].count >= w[1].count));
    let first = store.first_seq_since(&this_hour).await.unwrap().unwrap();
    let entries = all_entries(&store).await;
    let first_of_hour = entries
        .iter()
        .find(|e| e.timestamp.starts_with(&this_hour))
        .unwrap()
        .seq;
    assert_eq!(first, first_of_hour);
    assert_eq!(store.first_seq_since("9999-01-01T00").await.unwrap(), None);
}

on_both!(activity_counts_equal_the_recomputation);

//! The trust tables against the pure function: a long mixed history appended concurrently (so batches
//! group entries of many actions), then a rebuild, then gaps an older release or scoring version leaves.

use ledger_core::trust::{SCORING_VERSION, TrustReport};

use super::*;

const IDENTITIES: u64 = 12;

/// A small deterministic generator (xorshift), one per writer.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

fn event(kind: &str, actor: &str, action: &str, payload: serde_json::Value) -> NewEvent {
    NewEvent::new(kind, actor, payload).with_action(action)
}

/// The entries after `action.requested` of one action: every kind that moves trust, and some that do not.
fn story(dice: &mut Dice, owner: &str, action: &str) -> Vec<NewEvent> {
    let mut events = Vec::new();
    let levels = ["LOW", "MEDIUM", "HIGH"];
    if dice.roll(5) != 0 {
        let level = levels[dice.roll(3) as usize];
        events.push(event("risk.classified", "system", action, json!({"level": level})));
    }
    let policy = |outcome: &str, mode: &str| {
        event(
            "policy.decided",
            "system",
            action,
            json!({"outcome": outcome, "mode": mode}),
        )
    };
    match dice.roll(10) {
        0 => events.push(event("guardrail.denied", "system", action, json!({"reason": "scope"}))),
        1 => events.push(policy("deny", "enforce")),
        // Audit mode records a deny that does not count.
        2 => events.push(policy("deny", "audit")),
        3 => {
            events.push(policy("require_approval", "enforce"));
            events.push(event(
                "approval.denied",
                "usr_approver",
                action,
                json!({"comment": "no"}),
            ));
        }
        4 => {
            events.push(policy("allow", "enforce"));
            events.push(event("action.previewed", owner, action, json!({"dry_run_status": 200})));
        }
        5 => {
            events.push(policy("allow", "enforce"));
            events.push(event("action.failed", "system", action, json!({"error": "boom"})));
        }
        6 => {
            events.push(policy("allow", "enforce"));
            events.push(event("action.executed", "system", action, json!({})));
            events.push(event("outcome.verified", "system", action, json!({"passed": false})));
        }
        _ => {
            events.push(policy("allow", "enforce"));
            events.push(event("action.executed", "system", action, json!({})));
            events.push(event(
                "outcome.verified",
                "usr_approver",
                action,
                json!({"passed": true}),
            ));
        }
    }
    events
}

/// `actions` actions by each of `writers` concurrent writers, entry by entry or several at once, spread over
/// `ledgers` (gateways sharing the database).
pub(super) async fn mixed_history(ledgers: &[Ledger], round: u64, writers: u64, actions: u64) {
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..writers {
        let ledger = ledgers[writer as usize % ledgers.len()].clone();
        tasks.spawn(async move {
            let mut dice = Dice(0x9e37_79b9_7f4a_7c15 ^ (round * 1000 + writer + 1));
            for n in 0..actions {
                let owner = format!("agt_{}", dice.roll(IDENTITIES));
                let action = format!("act_{round}_{writer}_{n}");
                let requested = event("action.requested", &owner, &action, json!({"request": {}}));
                let mut events = vec![requested];
                events.extend(story(&mut dice, &owner, &action));
                if dice.roll(3) == 0 {
                    ledger.append_all(events).await.unwrap();
                } else {
                    for e in events {
                        ledger.append(e).await.unwrap();
                    }
                }
                if dice.roll(7) == 0 {
                    ledger.append(note(n)).await.unwrap();
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

pub(super) async fn all_entries(store: &Store) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    loop {
        let after = entries.last().map_or(0, |e| e.seq as i64);
        let page = store.entries_after(after, 1000).await.unwrap();
        if page.is_empty() {
            return entries;
        }
        entries.extend(page);
    }
}

/// Every stored change of `identity`, oldest first, read page by page as the API does.
async fn stored_changes(store: &Store, identity: &str, limit: u32) -> Vec<ledger_core::trust::TrustChange> {
    let mut changes = Vec::new();
    let mut before = None;
    loop {
        let page = store.trust_changes(identity, before, limit).await.unwrap();
        let full = page.len() == limit as usize;
        before = page.last().map(|c| c.seq);
        changes.extend(page);
        if !full {
            changes.reverse();
            return changes;
        }
    }
}

/// The stored scores and changes of every identity are those the pure function computes from all entries.
async fn assert_recomputed(store: &Store) {
    let entries = all_entries(store).await;
    let head = entries.last().map_or(0, |e| e.seq);
    let mut ids: Vec<String> = (0..IDENTITIES).map(|i| format!("agt_{i}")).collect();
    ids.extend(["usr_approver".to_owned(), "agt_nobody".to_owned()]);
    let mut moved = 0;
    for id in &ids {
        let expected: TrustReport = ledger_core::trust::trust(id, &entries);
        let stored = store.trust_score(id).await.unwrap();
        assert_eq!(stored.as_of_seq, head, "{id}: not up to date");
        assert_eq!(stored.score, expected.score, "{id}");
        assert_eq!(stored.changes, expected.changes.len() as u64, "{id}");
        assert_eq!(
            stored.last_change_seq,
            expected.changes.last().map_or(0, |c| c.seq),
            "{id}"
        );
        assert_eq!(stored_changes(store, id, 200).await, expected.changes, "{id}");
        moved += expected.changes.len();
    }
    assert!(moved > 100, "the history moves scores: {moved}");
    // Small pages join up to the same list.
    let expected = ledger_core::trust::trust("agt_3", &entries).changes;
    assert_eq!(stored_changes(store, "agt_3", 7).await, expected);
}

async fn trust_tables_equal_the_recomputation(db: &TestDb) {
    // Two writers with their own pools, as two gateway processes would have; one shared key.
    let pem = LedgerSigningKey::generate().to_pkcs8_pem().unwrap();
    let key = || LedgerSigningKey::from_pkcs8_pem(&pem).unwrap();
    let store = db.store().await;
    let ledger = Ledger::start(store.clone(), key(), AppendConfig::default());
    let other = Ledger::start(db.store().await, key(), AppendConfig::default());
    ledger.initialize().await.unwrap();
    mixed_history(&[ledger.clone(), other], 0, 8, 40).await;
    assert!(
        ledger.stats().transactions < ledger.stats().entries,
        "{:?}",
        ledger.stats()
    );
    assert_recomputed(&store).await;

    // A rebuild from the first entry gives the same tables.
    let mut pages = 0;
    let done = store.trust_rebuild(|_| pages += 1).await.unwrap();
    assert_eq!(done.folded_seq, done.head_seq);
    assert!(pages >= 2, "pages of 1000 entries: {pages}");
    assert_recomputed(&store).await;

    // An older release appends without folding (here: the appender finds another version and leaves the
    // batches behind); the state stays where it was and a catch-up folds the rest.
    let before = store.trust_score("agt_0").await.unwrap().as_of_seq;
    tamper::set_trust_state(&store, before, 0).await.unwrap();
    mixed_history(std::slice::from_ref(&ledger), 1, 4, 15).await;
    tamper::set_trust_state(&store, before, SCORING_VERSION).await.unwrap();
    let behind = store.trust_score("agt_0").await.unwrap();
    assert_eq!(behind.as_of_seq, before, "left behind");
    assert!(!behind.current, "a score that misses entries is not current");
    let caught = store.trust_catch_up(|_| {}).await.unwrap();
    assert!(caught.folded_seq > before);
    assert_recomputed(&store).await;
    // The appender folds again from there.
    mixed_history(std::slice::from_ref(&ledger), 2, 3, 5).await;
    assert_recomputed(&store).await;

    assert!(store.trust_score("agt_0").await.unwrap().current);

    // State of a newer scoring version (a newer release running beside this one) is left alone, and the
    // scores read meanwhile say they are not current (the gates then fail closed)...
    let head = store.head().await.unwrap().unwrap().seq;
    tamper::set_trust_state(&store, head, SCORING_VERSION + 1)
        .await
        .unwrap();
    mixed_history(std::slice::from_ref(&ledger), 3, 2, 5).await;
    let left = store.trust_catch_up(|_| {}).await.unwrap();
    assert_eq!(left.folded_seq, head, "a newer version's state is not reset");
    assert!(!store.trust_score("agt_0").await.unwrap().current);
    // ...and state of an older one is recomputed from scratch by the catch-up.
    tamper::set_trust_state(&store, head, SCORING_VERSION - 1)
        .await
        .unwrap();
    store.trust_catch_up(|_| {}).await.unwrap();
    assert_recomputed(&store).await;
    assert!(store.trust_score("agt_0").await.unwrap().current);
    // Up to date: nothing to do.
    let mut called = false;
    store.trust_catch_up(|_| called = true).await.unwrap();
    assert!(!called);
}

on_both!(trust_tables_equal_the_recomputation);

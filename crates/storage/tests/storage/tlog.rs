//! The transparency log's tree follows the ledger on both backends: batch by batch from concurrent
//! writers in two processes, and by the catch-up after entries an older release wrote without tiles.

use ledger_core::tlog::proofs::{verify_consistency, verify_inclusion};
use ledger_core::tlog::{Hash, leaf_hash, root_of};
use storage::{CheckpointRow, CosignatureRow};

use super::*;

async fn all_leaves(store: &Store) -> Vec<Hash> {
    let mut leaves: Vec<Hash> = Vec::new();
    loop {
        let page = store.entries_after(leaves.len() as i64, 1000).await.unwrap();
        if page.is_empty() {
            return leaves;
        }
        leaves.extend(page.iter().map(|e| leaf_hash(&e.chain_hash.parse().unwrap())));
    }
}

/// The stored tree holds every entry, its root is the one recomputed from the entries, and proofs made
/// from its tiles verify.
async fn assert_tree_is_the_ledger(store: &Store) {
    let leaves = all_leaves(store).await;
    let size = leaves.len() as u64;
    assert_eq!(store.tree_size().await.unwrap(), size);
    let root = store.tree_root(size).await.unwrap();
    assert_eq!(root, root_of(&leaves));
    for index in [0, size / 3, size / 2, size - 1] {
        let proof = store.inclusion_proof(size, index).await.unwrap();
        verify_inclusion(&proof, size, root, index, leaves[index as usize]).unwrap();
    }
    let half = size / 2;
    let proof = store.consistency_proof(half, size).await.unwrap();
    verify_consistency(&proof, half, root_of(&leaves[..half as usize]), size, root).unwrap();
    assert!(
        store.inclusion_proof(size + 1, 0).await.is_err(),
        "a tree larger than stored has no proofs"
    );
}

async fn notes(ledgers: &[Ledger], writers: usize, each: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let ledger = ledgers[w % ledgers.len()].clone();
        tasks.spawn(async move {
            for n in 0..each {
                if n % 5 == 0 {
                    let batch = (0..3).map(|i| NewEvent::new("ledger.note", "usr_t", json!({"w": w, "n": n, "i": i})));
                    ledger.append_all(batch.collect()).await.unwrap();
                } else {
                    ledger
                        .append(NewEvent::new("ledger.note", "usr_t", json!({"w": w, "n": n})))
                        .await
                        .unwrap();
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

async fn the_tree_follows_the_ledger(db: &TestDb) {
    let pem = LedgerSigningKey::generate().to_pkcs8_pem().unwrap();
    let key = || LedgerSigningKey::from_pkcs8_pem(&pem).unwrap();
    let store = db.store().await;
    let ledger = Ledger::start(store.clone(), key(), AppendConfig::default());
    let other = Ledger::start(db.store().await, key(), AppendConfig::default());
    ledger.initialize().await.unwrap();
    notes(&[ledger.clone(), other.clone()], 8, 60).await;
    assert_tree_is_the_ledger(&store).await;

    // A ledger an older release wrote has no tiles: after the upgrade, new batches are left out until the
    // catch-up. (The gateways stop first: a running appender trusts the edge it last committed.)
    drop((ledger, other));
    tamper::clear_tiles(&store).await.unwrap();
    let ledger = Ledger::start(store.clone(), key(), AppendConfig::default());
    let other = Ledger::start(db.store().await, key(), AppendConfig::default());
    notes(std::slice::from_ref(&ledger), 2, 10).await;
    assert_eq!(store.tree_size().await.unwrap(), 0, "left to the catch-up");
    let mut pages = Vec::new();
    let done = store.tlog_catch_up(|p| pages.push(p)).await.unwrap();
    assert_eq!(done.tree_size, done.head_seq);
    assert!(!pages.is_empty());
    assert_tree_is_the_ledger(&store).await;
    // Then the appenders integrate again, the other process's included (it reloads the edge).
    notes(&[ledger, other], 4, 20).await;
    assert_tree_is_the_ledger(&store).await;
}

async fn checkpoints_are_kept_once_per_size(db: &TestDb) {
    let store = db.store().await;
    let row = |size: i64, root: &str| CheckpointRow {
        size,
        root_hash: root.into(),
        note: format!("note {size} {root}"),
        key_id: "ed25519:0000000000000000".into(),
        created_at: "2026-12-06T00:00:00.000000Z".into(),
    };
    for size in 1..=12 {
        assert_eq!(store.insert_checkpoint(&row(size, "r")).await.unwrap(), row(size, "r"));
    }
    // Another root for a size already signed does not replace it: the caller sees the first.
    assert_eq!(store.insert_checkpoint(&row(5, "fork")).await.unwrap(), row(5, "r"));
    assert_eq!(store.latest_checkpoint().await.unwrap(), Some(row(12, "r")));
    let page = store.checkpoints_before(None, 5).await.unwrap();
    assert_eq!(page.iter().map(|c| c.size).collect::<Vec<_>>(), vec![12, 11, 10, 9, 8]);
    let next = store.checkpoints_before(Some(8), 100).await.unwrap();
    assert_eq!(next.len(), 7);
    assert_eq!(store.checkpoint_covering(7).await.unwrap().unwrap().size, 7);

    let cosign = |size: i64, witness: &str| CosignatureRow {
        size,
        witness: witness.into(),
        line: format!("— {witness} sig{size}\n"),
        received_at: "2026-12-06T00:00:01.000000Z".into(),
    };
    let witnesses = ["w1".to_string(), "w2".to_string()];
    for c in [cosign(10, "w1"), cosign(10, "w2"), cosign(11, "w1"), cosign(12, "w3")] {
        store.insert_cosignature(&c).await.unwrap();
    }
    assert_eq!(store.witness_size("w1").await.unwrap(), 11);
    assert_eq!(store.witness_size("nobody").await.unwrap(), 0);
    let cosigned = store.latest_cosigned_checkpoint(&witnesses, 2).await.unwrap();
    assert_eq!(cosigned.map(|c| c.size), Some(10));
    let cosigned = store.latest_cosigned_checkpoint(&witnesses, 1).await.unwrap();
    assert_eq!(cosigned.map(|c| c.size), Some(11));
    assert_eq!(store.cosignatures(10).await.unwrap().len(), 2);
}

on_both!(the_tree_follows_the_ledger, checkpoints_are_kept_once_per_size);

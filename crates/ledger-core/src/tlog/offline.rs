//! Verifying a ledger against a checkpoint kept elsewhere (an auditor's copy, or one cosigned by
//! witnesses): the check that holds against the operator, who could re-sign any history with the real key
//! but cannot make a different history hash to a root it already signed.

use serde::Serialize;

use super::checkpoint::OpenedCheckpoint;
use super::{Hash, hash_to_base64, root_of};

/// How a ledger relates to a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointResult {
    /// The ledger's first `size` entries are the checkpoint's tree: it equals or extends it.
    Consistent,
    /// The ledger ends before the checkpoint's size: entries at its end were cut.
    Truncated,
    /// The ledger's first `size` entries hash to another root: a past entry was rewritten (and re-signed),
    /// or this is another branch of a split view.
    Forked,
}

/// The outcome, as `docketops verify --checkpoint` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointCheck {
    /// How the ledger relates to the checkpoint.
    pub result: CheckpointResult,
    /// The same in a sentence for people, with the sizes compared.
    pub message: String,
    /// The checkpoint's origin (the log's name).
    pub origin: String,
    /// The checkpoint's tree size: how many entries it covers.
    pub size: u64,
    /// The checkpoint's root hash, in base64.
    pub root_hash: String,
    /// The ledger key ids whose signature on the checkpoint verified.
    pub signed_by: Vec<String>,
    /// The trusted witnesses that cosigned it.
    pub cosigned_by: Vec<String>,
}

/// Compares a ledger's leaf hashes (entry 1 first) with an opened checkpoint.
pub fn check_against(leaves: &[Hash], opened: &OpenedCheckpoint) -> CheckpointCheck {
    let cp = &opened.checkpoint;
    let have = leaves.len() as u64;
    let (result, message) = if have < cp.size {
        (
            CheckpointResult::Truncated,
            format!(
                "the checkpoint covers {} entries but the ledger holds {have}: the last {} were cut",
                cp.size,
                cp.size - have
            ),
        )
    } else if root_of(&leaves[..cp.size as usize]) != cp.root {
        (
            CheckpointResult::Forked,
            format!(
                "the ledger's first {} entries do not hash to the checkpoint's root: a past entry was rewritten \
                 or this is another history than the one the checkpoint signed",
                cp.size
            ),
        )
    } else {
        (
            CheckpointResult::Consistent,
            format!(
                "the ledger's first {} of {have} entries are the checkpoint's tree",
                cp.size
            ),
        )
    };
    CheckpointCheck {
        result,
        message,
        origin: cp.origin.clone(),
        size: cp.size,
        root_hash: hash_to_base64(&cp.root),
        signed_by: opened.log_keys.clone(),
        cosigned_by: opened.cosigned_by.iter().map(|(name, _)| name.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::checkpoint::Checkpoint;

    fn opened(leaves: &[Hash]) -> OpenedCheckpoint {
        OpenedCheckpoint {
            checkpoint: Checkpoint {
                origin: "o".into(),
                size: leaves.len() as u64,
                root: root_of(leaves),
            },
            log_keys: vec![],
            cosigned_by: vec![],
            unknown_signatures: 0,
        }
    }

    #[test]
    fn cut_rewritten_and_extended_ledgers_are_told_apart() {
        let leaves: Vec<Hash> = (0..100u32).map(|i| tlog_tiles::record_hash(&i.to_be_bytes())).collect();
        let cp = opened(&leaves[..60]);
        assert_eq!(check_against(&leaves, &cp).result, CheckpointResult::Consistent);
        assert_eq!(check_against(&leaves[..60], &cp).result, CheckpointResult::Consistent);
        assert_eq!(check_against(&leaves[..59], &cp).result, CheckpointResult::Truncated);
        let mut rewritten = leaves.clone();
        rewritten[17] = Hash([0; 32]);
        assert_eq!(check_against(&rewritten, &cp).result, CheckpointResult::Forked);
    }
}

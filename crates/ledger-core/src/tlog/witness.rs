//! The C2SP `tlog-witness` protocol's `add-checkpoint` request, and the witness's decision on it.
//!
//! Request body: `old <size>\n`, zero to 63 base64 consistency-proof lines, a blank line, then the signed
//! checkpoint. The witness cosigns only a checkpoint that is signed by the log and consistent with the
//! latest one it cosigned for that origin; checking and recording the new state must be one atomic step
//! (the caller's storage does that around [`decide`]).

use super::checkpoint::{self, Checkpoint, CheckpointError};
use super::proofs::verify_consistency;
use super::{Hash, hash_from_base64, hash_to_base64};
use crate::keys::LedgerPublicKey;

/// The most consistency-proof lines a request may carry (C2SP tlog-witness).
pub const MAX_PROOF_LINES: usize = 63;

/// The body of `POST /add-checkpoint`.
#[derive(Debug, Clone, PartialEq)]
pub struct AddCheckpoint {
    /// The size of the latest checkpoint the log believes this witness cosigned (0 for none).
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size (empty when `old_size` is 0 or equals it).
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

/// Why a witness refuses a checkpoint, with the HTTP status C2SP tlog-witness gives each case.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The body or its checkpoint is malformed, or the sizes and proof do not fit together (an old size
    /// beyond the checkpoint's, a proof where none belongs). HTTP 400.
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// The checkpoint's origin (given) names no log this witness follows. HTTP 404.
    #[error("this witness does not follow the log {0:?}")]
    UnknownLog(String),
    /// The checkpoint is not signed by one of the log's trusted keys, or a signature on it does not
    /// verify. HTTP 403.
    #[error("no trusted signature of the log on the checkpoint: {0}")]
    BadSignature(CheckpointError),
    /// The request's old size is not the size of the latest checkpoint this witness cosigned. HTTP 409.
    #[error("the old size {old} is not the size {latest} of the latest checkpoint this witness cosigned")]
    SizeMismatch {
        /// The request's old size.
        old: u64,
        /// The size of the latest checkpoint cosigned for the log (0 for none).
        latest: u64,
    },
    /// The checkpoint has the size of the latest cosigned one but another root: a split view. HTTP 409.
    #[error("the checkpoint has the size of the latest cosigned one ({size}) but another root hash")]
    RootMismatch {
        /// The size both checkpoints have.
        size: u64,
    },
    /// The consistency proof from the old size to the checkpoint's does not verify. HTTP 422.
    #[error("the consistency proof from size {old} to {size} does not verify")]
    BadProof {
        /// The request's old size.
        old: u64,
        /// The checkpoint's size.
        size: u64,
    },
}

impl Refusal {
    /// The HTTP status of the refusal (C2SP tlog-witness).
    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::BadSignature(_) => 403,
            Refusal::UnknownLog(_) => 404,
            Refusal::SizeMismatch { .. } | Refusal::RootMismatch { .. } => 409,
            Refusal::BadProof { .. } => 422,
        }
    }
}

impl AddCheckpoint {
    /// The request body, as [`parse`](Self::parse) reads it.
    pub fn to_body(&self) -> String {
        let mut body = format!("old {}\n", self.old_size);
        for hash in &self.proof {
            body.push_str(&hash_to_base64(hash));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(&self.checkpoint);
        body
    }

    /// Reads a request body. Checks its form only; [`decide`] checks the checkpoint.
    pub fn parse(body: &str) -> Result<Self, Refusal> {
        let bad = |why: &str| Refusal::BadRequest(why.to_string());
        let (head, checkpoint) = body
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old_size = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .filter(|n| is_decimal(n))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| bad("the first line must be `old <size>` in decimal"))?;
        let proof = lines
            .map(|l| hash_from_base64(l).ok_or_else(|| bad("a proof line is not a base64 hash")))
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(bad("more than 63 proof lines"));
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            checkpoint: checkpoint.to_string(),
        })
    }
}

/// ASCII decimal without leading zeros (`0` alone), as C2SP writes sizes.
pub(crate) fn is_decimal(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'))
}

/// The origin a signed checkpoint names (its first line), to find the log it belongs to.
pub fn origin_of(note: &str) -> Option<&str> {
    note.split_once('\n')
        .map(|(origin, _)| origin)
        .filter(|o| !o.is_empty())
}

/// The latest checkpoint a witness cosigned for a log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cosigned {
    /// The tree size of that checkpoint (0 counts as never having cosigned).
    pub size: u64,
    /// The root hash of that checkpoint.
    pub root: Hash,
}

/// Decides on a request for a log the witness follows (its trusted `keys`), given the latest checkpoint it
/// cosigned for it (`None`: never). Returns the checkpoint to cosign, which becomes the new state.
pub fn decide(
    request: &AddCheckpoint,
    keys: &[LedgerPublicKey],
    latest: Option<Cosigned>,
) -> Result<Checkpoint, Refusal> {
    let opened = match checkpoint::open(&request.checkpoint, keys, &[], 0) {
        Ok(opened) => opened,
        Err(CheckpointError::Malformed(why)) => return Err(Refusal::BadRequest(why)),
        Err(e) => return Err(Refusal::BadSignature(e)),
    };
    let cp = opened.checkpoint;
    let (old, size) = (request.old_size, cp.size);
    if old > size {
        return Err(Refusal::BadRequest(format!(
            "old size {old} is larger than the checkpoint's {size}"
        )));
    }
    if size == 0 && cp.root != crate::tlog::root_of(&[]) {
        return Err(Refusal::BadRequest("an empty tree's root is SHA-256 of nothing".into()));
    }
    // A stored size of 0 is the empty tree: the same as never having cosigned.
    let latest = latest.filter(|l| l.size > 0);
    let latest_size = latest.map_or(0, |l| l.size);
    if old != latest_size {
        return Err(Refusal::SizeMismatch {
            old,
            latest: latest_size,
        });
    }
    match latest {
        None if request.proof.is_empty() => Ok(cp),
        None => Err(Refusal::BadRequest(
            "the proof must be empty when the old size is 0".into(),
        )),
        Some(l) if l.size == size => match l.root == cp.root && request.proof.is_empty() {
            true => Ok(cp),
            false if l.root != cp.root => Err(Refusal::RootMismatch { size }),
            false => Err(Refusal::BadProof { old, size }),
        },
        Some(l) => match verify_consistency(&request.proof, old, l.root, size, cp.root) {
            Ok(()) => Ok(cp),
            Err(_) => Err(Refusal::BadProof { old, size }),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::keys::LedgerSigningKey;
    use crate::tlog::TreeEdge;
    use crate::tlog::proofs::{TileSource, consistency_proof};

    struct Tiles(HashMap<(u8, u64), Vec<u8>>);
    impl TileSource for Tiles {
        fn tile(&self, level: u8, index: u64) -> Option<&[u8]> {
            self.0.get(&(level, index)).map(Vec::as_slice)
        }
    }

    const ORIGIN: &str = "log.example/w";

    /// Checkpoints of one log at sizes 1..=n, and the tiles of size n.
    fn history(n: u64, salt: u8) -> (Vec<Checkpoint>, Tiles) {
        let mut edge = TreeEdge::empty();
        let mut tiles = Tiles(HashMap::new());
        let mut cps = Vec::new();
        for i in 0..n {
            let leaf = tlog_tiles::record_hash(&[salt, i as u8, (i >> 8) as u8]);
            for w in edge.append([leaf]) {
                tiles.0.insert((w.level, w.index), w.data);
            }
            cps.push(Checkpoint {
                origin: ORIGIN.into(),
                size: edge.size(),
                root: edge.root(),
            });
        }
        (cps, tiles)
    }

    fn request(old: Option<&Checkpoint>, new: &Checkpoint, tiles: &Tiles, key: &LedgerSigningKey) -> AddCheckpoint {
        AddCheckpoint {
            old_size: old.map_or(0, |c| c.size),
            proof: old.map_or(vec![], |o| consistency_proof(o.size, new.size, tiles).unwrap()),
            checkpoint: new.sign(key).unwrap(),
        }
    }

    #[test]
    fn a_witness_follows_a_consistent_log_and_refuses_everything_else() {
        let key = LedgerSigningKey::from_seed([3; 32]);
        let keys = [key.public_key()];
        let (cps, tiles) = history(600, 0);
        let (fork, fork_tiles) = history(600, 1);

        let first = request(None, &cps[9], &tiles, &key);
        let round_trip = AddCheckpoint::parse(&first.to_body()).unwrap();
        assert_eq!(round_trip, first);
        assert_eq!(decide(&first, &keys, None).unwrap(), cps[9]);
        let state = Some(Cosigned {
            size: 10,
            root: cps[9].root,
        });

        let next = request(Some(&cps[9]), &cps[499], &tiles, &key);
        assert_eq!(decide(&next, &keys, state).unwrap(), cps[499]);

        // Replaying an old checkpoint: its old size is not the witness's.
        let replay = request(None, &cps[4], &tiles, &key);
        assert_eq!(decide(&replay, &keys, state).unwrap_err().status(), 409);
        // The same size again with the same root is cosigned again; another root is a fork.
        assert!(decide(&request(Some(&cps[9]), &cps[9], &tiles, &key), &keys, state).is_ok());
        let split = request(Some(&cps[9]), &fork[9], &fork_tiles, &key);
        assert!(matches!(
            decide(&split, &keys, state),
            Err(Refusal::RootMismatch { size: 10 })
        ));
        // A forked history further on: the proof cannot connect it to what the witness saw.
        let forked = request(Some(&fork[9]), &fork[499], &fork_tiles, &key);
        assert!(matches!(decide(&forked, &keys, state), Err(Refusal::BadProof { .. })));
        // Signed by another key.
        let stranger = LedgerSigningKey::from_seed([4; 32]);
        let unsigned = request(Some(&cps[9]), &cps[499], &tiles, &stranger);
        assert_eq!(decide(&unsigned, &keys, state).unwrap_err().status(), 403);
        // Going backwards.
        let back = AddCheckpoint {
            old_size: 10,
            proof: vec![],
            checkpoint: cps[4].sign(&key).unwrap(),
        };
        assert_eq!(decide(&back, &keys, state).unwrap_err().status(), 400);
    }

    #[test]
    fn an_empty_tree_is_cosigned_only_with_the_empty_root() {
        let key = LedgerSigningKey::from_seed([3; 32]);
        let empty = |root| AddCheckpoint {
            old_size: 0,
            proof: vec![],
            checkpoint: Checkpoint {
                origin: ORIGIN.into(),
                size: 0,
                root,
            }
            .sign(&key)
            .unwrap(),
        };
        let keys = [key.public_key()];
        assert!(decide(&empty(crate::tlog::root_of(&[])), &keys, None).is_ok());
        let forged = decide(&empty(Hash([7; 32])), &keys, None);
        assert_eq!(forged.unwrap_err().status(), 400);
    }

    #[test]
    fn malformed_requests_are_bad_requests() {
        for body in [
            "",
            "old 01\n\nx\n",
            "old +1\n\nx\n",
            "old 1\nnot base64\n\nx\n",
            "new 1\n\nx\n",
        ] {
            assert!(
                matches!(AddCheckpoint::parse(body), Err(Refusal::BadRequest(_))),
                "{body:?}"
            );
        }
        let many = format!(
            "old 1\n{}\nx\n",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n".repeat(64)
        );
        assert!(AddCheckpoint::parse(&many).is_err());
    }
}

//! The transparency log's test vectors in docs/ledger-format.md §8.6: the tree over the four entries of
//! §7, an inclusion and a consistency proof, a signed checkpoint and a cosignature. Each value is computed
//! twice — with plain SHA-256 and Ed25519 calls following RFC 6962 and C2SP, and through the crate — and
//! must appear in the page.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer, SigningKey};
use ledger_core::LedgerSigningKey;
use ledger_core::tlog::checkpoint::{Checkpoint, WitnessSigner};
use ledger_core::tlog::proofs::{TileSource, consistency_proof, inclusion_proof};
use ledger_core::tlog::{Hash, TreeEdge, hash_to_base64};
use sha2::{Digest, Sha256};

/// The chain hashes of §7's entries 1 to 4.
const CHAIN_HASHES: [&str; 4] = [
    "8e22d750f1c920685b86d97b8be7ef3a90cc46cee778a4ce7de241fdb81ca4b1",
    "eba67ee73c20afc4642e8a8ca771c4c3b3ada2a5f07249c8023af47336cdcd38",
    "4ee67361db08f6875efdf4efe635ced1b0b716d406204bd905b52c464550764b",
    "d0263f59c41143e4004b4774e2fa42b878f9ef44f90fe4a2c7b91c1f8b6ac92f",
];
const ORIGIN: &str = "example.com/docketops-vectors";
const WITNESS: &str = "witness.example.com/vectors";
const TIMESTAMP: u64 = 1_767_225_600;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn leaf(i: usize) -> [u8; 32] {
    sha256(&[&[0], &hex::decode(CHAIN_HASHES[i]).unwrap()])
}

fn node(left: [u8; 32], right: [u8; 32]) -> [u8; 32] {
    sha256(&[&[1], &left, &right])
}

fn b64(bytes: [u8; 32]) -> String {
    BASE64.encode(bytes)
}

struct Tiles(std::collections::HashMap<(u8, u64), Vec<u8>>);
impl TileSource for Tiles {
    fn tile(&self, level: u8, index: u64) -> Option<&[u8]> {
        self.0.get(&(level, index)).map(Vec::as_slice)
    }
}

#[test]
fn the_transparency_vectors_are_the_ones_the_code_produces_and_the_page_shows() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/ledger-format.md")).unwrap();
    let (l1, l2, l3, l4) = (leaf(0), leaf(1), leaf(2), leaf(3));
    let root3 = node(node(l1, l2), l3);
    let root4 = node(node(l1, l2), node(l3, l4));

    let mut edge = TreeEdge::empty();
    let mut tiles = Tiles(Default::default());
    let chains: Vec<Hash> = (0..4).map(|i| Hash(leaf(i))).collect();
    for w in edge.append(chains) {
        tiles.0.insert((w.level, w.index), w.data);
    }
    assert_eq!(edge.root().0, root4);
    let inclusion = inclusion_proof(4, 2, &tiles).unwrap();
    assert_eq!(
        inclusion.iter().map(|h| h.0).collect::<Vec<_>>(),
        vec![l4, node(l1, l2)]
    );
    let consistency = consistency_proof(3, 4, &tiles).unwrap();
    assert_eq!(
        consistency.iter().map(|h| h.0).collect::<Vec<_>>(),
        vec![l3, l4, node(l1, l2)]
    );

    // The checkpoint, signed by §7's key, by hand: key id = SHA-256(origin ‖ "\n" ‖ 0x01 ‖ key)[:4].
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
    let raw = SigningKey::from_bytes(&seed);
    let body = format!("{ORIGIN}\n4\n{}\n", b64(root4));
    let key_id = &sha256(&[ORIGIN.as_bytes(), b"\n", &[1], raw.verifying_key().as_bytes()])[..4];
    let signature = raw.sign(body.as_bytes());
    let line = format!(
        "— {ORIGIN} {}\n",
        BASE64.encode([key_id, &signature.to_bytes()[..]].concat())
    );
    let note = format!("{body}\n{line}");
    let by_crate = Checkpoint {
        origin: ORIGIN.into(),
        size: 4,
        root: Hash(root4),
    }
    .sign(&LedgerSigningKey::from_seed(seed))
    .unwrap();
    assert_eq!(by_crate, note);

    // The cosignature: key id over 0x04, message "cosignature/v1\ntime T\n" ‖ body, signature T ‖ sig.
    let witness_seed = [0x42u8; 32];
    let witness = SigningKey::from_bytes(&witness_seed);
    let witness_id = &sha256(&[WITNESS.as_bytes(), b"\n", &[4], witness.verifying_key().as_bytes()])[..4];
    let message = format!("cosignature/v1\ntime {TIMESTAMP}\n{body}");
    let cosig = witness.sign(message.as_bytes());
    let cosignature = format!(
        "— {WITNESS} {}\n",
        BASE64.encode([witness_id, &TIMESTAMP.to_be_bytes()[..], &cosig.to_bytes()[..]].concat())
    );
    let by_crate = WitnessSigner::new(WITNESS, SigningKey::from_bytes(&witness_seed)).unwrap();
    assert_eq!(by_crate.cosign(&body, TIMESTAMP), cosignature);

    let values = [
        b64(l1),
        b64(l2),
        b64(l3),
        b64(l4),
        b64(root3),
        b64(root4),
        hash_to_base64(&Hash(node(l1, l2))),
        note.clone(),
        cosignature.clone(),
        by_crate.public().to_vkey(),
        hex::encode(witness.verifying_key().as_bytes()),
    ];
    let missing: Vec<&String> = values.iter().filter(|v| !doc.contains(v.trim_end())).collect();
    assert!(
        missing.is_empty(),
        "missing from docs/ledger-format.md §8.6:\n{}",
        values.join("\n---\n")
    );
}

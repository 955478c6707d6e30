//! The transparency log's live side (docs/transparency.md): a checkpoint signed at least every second
//! while entries arrive, sent to the witnesses for their cosignatures, and receipts built from them.
//!
//! The log never signs two inconsistent checkpoints: before signing size N it recomputes, from the
//! stored tiles, the root of the latest stored checkpoint M and refuses to sign unless it is the one
//! that checkpoint signed (the tiles for M..N extend it by construction). A witness that is down delays
//! its cosignatures and nothing else: appends never wait for witnesses.

use std::sync::Arc;
use std::time::Duration;

use ledger_core::tlog::checkpoint::{self, Checkpoint, WitnessKey};
use ledger_core::tlog::receipt::Receipt;
use ledger_core::tlog::{TILE_WIDTH, hash_from_base64, hash_to_base64, leaf_hash};
use ledger_core::{Entry, LedgerPublicKey, LedgerSigningKey};
use serde::Serialize;
use storage::{CheckpointRow, StorageError, Store, TreeReadError};

mod push;
use tokio::sync::watch;

/// Where the receipt of entry `entry_id` is served.
pub fn receipt_url(entry_id: &str) -> String {
    format!("/api/v1/ledger/receipts/{entry_id}")
}

/// A witness the gateway asks for cosignatures.
#[derive(Debug, Clone)]
pub struct WitnessEndpoint {
    /// The submission prefix: `POST {url}/add-checkpoint`.
    pub url: String,
    /// The witness's name and public key: its cosignatures are checked against them.
    pub key: WitnessKey,
}

/// How the transparency log runs: its origin, how often it checkpoints, and who cosigns.
#[derive(Debug, Clone)]
pub struct TransparencyConfig {
    /// The log's origin: the checkpoints' first line and their signature's key name.
    pub origin: String,
    /// How often a new checkpoint is considered.
    pub interval: Duration,
    /// The witnesses asked to cosign each checkpoint (none: checkpoints are only signed by the log).
    pub witnesses: Vec<WitnessEndpoint>,
    /// Cosignatures a checkpoint needs to count as cosigned.
    pub quorum: usize,
    /// Whether the log's read endpoints need no credentials.
    pub public: bool,
}

impl TransparencyConfig {
    /// A log without witnesses, read by auditors, checkpointing every second.
    pub fn local(origin: &str) -> Self {
        TransparencyConfig {
            origin: origin.to_string(),
            interval: Duration::from_secs(1),
            witnesses: Vec::new(),
            quorum: 0,
            public: false,
        }
    }
}

/// Why no checkpoint was signed, or no receipt built.
#[derive(Debug, thiserror::Error)]
pub enum TransparencyError {
    /// A database read or write failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The tree's tiles could not be read, or a proof could not be made from them.
    #[error("the tree: {0}")]
    Tree(#[from] TreeReadError),
    /// The stored tiles no longer give the latest checkpoint's signed root: signing a larger one could
    /// contradict it.
    #[error(
        "refusing to sign size {size}: the stored tiles give checkpoint {previous} another root than the one it signed \
         (the tiles or the checkpoints were changed)"
    )]
    Inconsistent {
        /// The size of the latest stored checkpoint.
        previous: u64,
        /// The size that was to be signed.
        size: u64,
    },
    /// Another gateway stored a checkpoint of the same size with another root.
    #[error("another gateway signed size {size} with another root: the log has forked")]
    Fork {
        /// The size both checkpoints claim.
        size: u64,
    },
    /// The tree's last leaf is not the ledger's entry at that size, or the tree holds more entries than
    /// the ledger.
    #[error(
        "refusing to sign size {size}: the stored tiles do not end with the ledger's entries ({why}; the tiles were \
         changed or restored apart from the entries)"
    )]
    TreeMismatch {
        /// The tree size that was to be signed.
        size: u64,
        /// What does not match.
        why: String,
    },
    /// The checkpoint could not be signed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] checkpoint::CheckpointError),
    /// This gateway's signing key was retired (`docketops keys rotate`): it signs no more checkpoints.
    #[error("this gateway holds {ours} but the ledger's active key is {active}: restart it with the active key")]
    KeyNotActive {
        /// The key id this gateway holds.
        ours: String,
        /// The key id the ledger's head names as active.
        active: String,
    },
}

/// One witness's progress, for `/readyz` and the dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct WitnessStatus {
    /// The witness's key name.
    pub name: String,
    /// Its submission prefix.
    pub url: String,
    /// The largest checkpoint it cosigned.
    pub cosigned_size: u64,
    /// Entries of the latest checkpoint it has not cosigned yet.
    pub lag: u64,
}

/// The log's progress, for `/readyz` and the dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct TransparencyStatus {
    /// The log's origin.
    pub origin: String,
    /// Entries the tree holds.
    pub tree_size: u64,
    /// The size of the latest stored checkpoint (0: none yet).
    pub checkpoint_size: u64,
    /// The largest checkpoint with the quorum of cosignatures (0: none yet, or no witnesses).
    pub cosigned_size: u64,
    /// Cosignatures a checkpoint needs to count as cosigned.
    pub quorum: usize,
    /// Each configured witness's progress.
    pub witnesses: Vec<WitnessStatus>,
}

/// The transparency log of this gateway: it signs checkpoints, gathers the witnesses' cosignatures and
/// builds receipts.
#[derive(Debug)]
pub struct Transparency {
    store: Store,
    key: Arc<LedgerSigningKey>,
    config: TransparencyConfig,
    http: reqwest::Client,
    /// The latest checkpoint's size: wakes the witness pushers and receipts that wait for one.
    latest: watch::Sender<u64>,
    /// The largest checkpoint with the quorum of cosignatures, for receipts that wait for one.
    cosigned: watch::Sender<u64>,
}

impl Transparency {
    /// A log over `store`'s tiles and checkpoints that signs with `key`; nothing is signed until
    /// [`Transparency::run`] or [`Transparency::checkpoint_once`].
    pub fn new(store: Store, key: LedgerSigningKey, config: TransparencyConfig) -> Transparency {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client builds");
        Transparency {
            store,
            key: Arc::new(key),
            config,
            http,
            latest: watch::Sender::new(0),
            cosigned: watch::Sender::new(0),
        }
    }

    /// The configuration the log runs with.
    pub fn config(&self) -> &TransparencyConfig {
        &self.config
    }

    /// The latest checkpoint's size this process knows of (0: none yet): the one it signed or read last.
    pub fn latest_size(&self) -> u64 {
        *self.latest.borrow()
    }

    /// Signs checkpoints, and keeps each witness up to date in a task of its own (a slow or down witness
    /// never delays a checkpoint or another witness), until the process ends.
    pub async fn run(self: Arc<Self>) {
        if let Err(error) = self.refresh_cosigned().await {
            tracing::warn!(%error, "cannot read the cosigned checkpoints");
        }
        for index in 0..self.config.witnesses.len() {
            tokio::spawn(Arc::clone(&self).follow_witness(index));
        }
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = self.checkpoint_once().await {
                tracing::error!(%error, "no checkpoint signed");
            }
            // Another gateway's witness pushers may have stored the cosignatures a receipt waits for.
            if let Err(error) = self.refresh_cosigned().await {
                tracing::warn!(%error, "cannot read the cosigned checkpoints");
            }
        }
    }

    /// Integrates what the tree misses, then signs a checkpoint of the whole tree if it grew. Returns the
    /// new checkpoint, if any.
    pub async fn checkpoint_once(&self) -> Result<Option<CheckpointRow>, TransparencyError> {
        let head = self.store.head().await?;
        // A gateway started before `docketops keys rotate` must not go on signing with the retired key.
        if let Some(head) = &head
            && let Ok(active) = ledger_core::entry::next_signing_key_id(head)
            && active != self.key.key_id()
        {
            // It still serves the log's reads, with the latest checkpoint other gateways signed.
            self.note_latest().await?;
            return Err(TransparencyError::KeyNotActive {
                ours: self.key.key_id().to_string(),
                active,
            });
        }
        let mut size = self.store.tree_size().await?;
        // The catch-up takes the ledger-wide lock: only when the tree is behind.
        if head.as_ref().is_some_and(|h| h.seq > size) {
            size = self.store.tlog_catch_up(|_| {}).await?.tree_size;
        }
        let latest = self.note_latest().await?;
        if size == 0 || latest.as_ref().is_some_and(|l| l.size as u64 >= size) {
            return Ok(None);
        }
        self.check_tree_ends_with_ledger(size).await?;
        if let Some(previous) = &latest {
            self.check_extends(previous, size).await?;
        }
        // Past every cache, as what it signs must be what the database holds.
        let root = self.store.tree_root_from_database(size).await?;
        let checkpoint = Checkpoint {
            origin: self.config.origin.clone(),
            size,
            root,
        };
        let row = CheckpointRow {
            size: size as i64,
            root_hash: hash_to_base64(&root),
            note: checkpoint.sign(&self.key)?,
            key_id: self.key.key_id().to_string(),
            created_at: crate::now(),
        };
        let stored = self.store.insert_checkpoint(&row).await?;
        if stored.root_hash != row.root_hash {
            return Err(TransparencyError::Fork { size });
        }
        self.latest.send_replace(size);
        tracing::debug!(size, "checkpoint signed");
        Ok(Some(stored))
    }

    /// Reads the latest stored checkpoint (another gateway's too) and makes it the one this process knows.
    async fn note_latest(&self) -> Result<Option<CheckpointRow>, StorageError> {
        let latest = self.store.latest_checkpoint().await?;
        if let Some(latest) = &latest {
            let size = latest.size as u64;
            self.latest.send_if_modified(|v| std::mem::replace(v, size) != size);
        }
        Ok(latest)
    }

    /// The tree's last leaf must be the ledger's entry `size` (tiles restored from another history, or a
    /// tree ahead of the entries, would otherwise be signed).
    async fn check_tree_ends_with_ledger(&self, size: u64) -> Result<(), TransparencyError> {
        let mismatch = |why: String| TransparencyError::TreeMismatch { size, why };
        // Read after the tree's size: the tree grows in the appends' transactions, so never past this.
        let head = self.store.head().await?.map_or(0, |h| h.seq);
        if size > head {
            return Err(mismatch(format!("the tree holds {size} entries, the ledger {head}")));
        }
        let entry = self.store.entries_after(size as i64 - 1, 1).await?;
        let chain = entry
            .first()
            .and_then(|e| e.chain_hash.parse::<ledger_core::Digest>().ok());
        let chain = chain.ok_or_else(|| mismatch(format!("entry {size} is unreadable")))?;
        let index = size - 1;
        let tile = self.store.tile(0, index / TILE_WIDTH as u64).await?;
        let offset = (index % TILE_WIDTH as u64) as usize * 32;
        let stored = tile.as_ref().and_then(|t| t.get(offset..offset + 32));
        if stored != Some(leaf_hash(&chain).0.as_slice()) {
            return Err(mismatch(format!("leaf {index} is not entry {size}'s")));
        }
        Ok(())
    }

    /// The previous checkpoint's root, as its signature covers it (the note, not the stored column), must
    /// be what the stored tiles give at its size.
    async fn check_extends(&self, previous: &CheckpointRow, size: u64) -> Result<(), TransparencyError> {
        let keys: Vec<LedgerPublicKey> = self
            .store
            .keys()
            .await?
            .iter()
            .filter_map(|k| LedgerPublicKey::from_hex(&k.public_key).ok())
            .collect();
        let inconsistent = TransparencyError::Inconsistent {
            previous: previous.size as u64,
            size,
        };
        let Ok(signed) = checkpoint::open(&previous.note, &keys, &[], 0) else {
            return Err(inconsistent);
        };
        if signed.checkpoint.origin != self.config.origin {
            return Err(inconsistent);
        }
        let recomputed = self.store.tree_root_from_database(previous.size as u64).await?;
        let column = hash_from_base64(&previous.root_hash);
        if signed.checkpoint.root != recomputed || column != Some(recomputed) {
            return Err(inconsistent);
        }
        Ok(())
    }

    /// The checkpoint's note with every stored cosignature line appended.
    pub async fn cosigned_note(&self, row: &CheckpointRow) -> Result<String, StorageError> {
        let lines: Vec<String> = self
            .store
            .cosignatures(row.size as u64)
            .await?
            .into_iter()
            .map(|c| c.line)
            .collect();
        Ok(checkpoint::add_signature_lines(&row.note, &lines))
    }

    /// The receipt of `entry`: the latest checkpoint with the quorum of cosignatures if it covers the entry,
    /// else the smallest stored checkpoint covering it (not cosigned yet). None while none covers it.
    pub async fn receipt(&self, entry: &Entry) -> Result<Option<Receipt>, TransparencyError> {
        let cosigned = match self.config.quorum {
            0 => None,
            quorum => {
                self.store
                    .latest_cosigned_checkpoint(&self.witness_names(), quorum)
                    .await?
            }
        };
        let row = match cosigned.filter(|c| c.size as u64 >= entry.seq) {
            Some(row) => row,
            None => match self.store.checkpoint_covering(entry.seq).await? {
                Some(row) => row,
                None => return Ok(None),
            },
        };
        let proof = self.store.inclusion_proof(row.size as u64, entry.seq - 1).await?;
        Ok(Some(Receipt {
            entry: entry.clone(),
            index: entry.seq - 1,
            proof,
            checkpoint: self.cosigned_note(&row).await?,
        }))
    }

    /// Waits until a checkpoint covers `seq` — one with the quorum of cosignatures when witnesses are
    /// configured — (true) or `timeout` passes (false).
    pub async fn wait_for_receipt(&self, seq: u64, timeout: Duration) -> bool {
        let mut size = match self.config.quorum {
            0 => self.latest.subscribe(),
            _ => self.cosigned.subscribe(),
        };
        tokio::time::timeout(timeout, size.wait_for(|&size| size >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub(crate) fn witness_names(&self) -> Vec<String> {
        self.config.witnesses.iter().map(|w| w.key.name.clone()).collect()
    }

    /// Re-reads the largest checkpoint with the quorum of cosignatures (after a cosignature is stored).
    pub(crate) async fn refresh_cosigned(&self) -> Result<(), StorageError> {
        if self.config.quorum == 0 {
            return Ok(());
        }
        let cosigned = self
            .store
            .latest_cosigned_checkpoint(&self.witness_names(), self.config.quorum)
            .await?;
        let size = cosigned.map_or(0, |c| c.size as u64);
        self.cosigned.send_if_modified(|v| std::mem::replace(v, size) != size);
        Ok(())
    }

    /// The log's verifier keys: every ledger key under this origin (old checkpoints stay verifiable).
    pub async fn verifier_keys(&self) -> Result<Vec<String>, StorageError> {
        let keys = self.store.keys().await?;
        Ok(keys
            .iter()
            .filter_map(|k| LedgerPublicKey::from_hex(&k.public_key).ok())
            .map(|k| checkpoint::log_verifier_key(&self.config.origin, &k))
            .collect())
    }

    /// The log's progress and each witness's, read from the database.
    pub async fn status(&self) -> Result<TransparencyStatus, StorageError> {
        let checkpoint_size = self.store.latest_checkpoint().await?.map_or(0, |c| c.size as u64);
        let mut witnesses = Vec::new();
        for w in &self.config.witnesses {
            let cosigned_size = self.store.witness_size(&w.key.name).await?;
            witnesses.push(WitnessStatus {
                name: w.key.name.clone(),
                url: w.url.clone(),
                cosigned_size,
                lag: checkpoint_size.saturating_sub(cosigned_size),
            });
        }
        let cosigned = match self.config.quorum {
            0 => None,
            quorum => {
                self.store
                    .latest_cosigned_checkpoint(&self.witness_names(), quorum)
                    .await?
            }
        };
        Ok(TransparencyStatus {
            origin: self.config.origin.clone(),
            tree_size: self.store.tree_size().await?,
            checkpoint_size,
            cosigned_size: cosigned.map_or(0, |c| c.size as u64),
            quorum: self.config.quorum,
            witnesses,
        })
    }
}

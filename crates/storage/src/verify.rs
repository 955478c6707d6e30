//! Verifying and exporting the stored ledger: the database read in pages, fed to the core verifier
//! or written as a bundle. Memory stays flat: at most two pages are held at once.

use ledger_core::bundle::{self, BUNDLE_FORMAT, BundleHead, BundleHeader};
use ledger_core::{Digest, Verifier, VerifyOptions, VerifyReport};
use time::OffsetDateTime;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::{StorageError, Store};

/// Entries read per page.
pub const PAGE_SIZE: u32 = 4096;

/// Verifies the whole stored ledger. `progress` is called with the number of entries checked so far.
pub async fn verify_ledger(
    store: &Store,
    options: VerifyOptions,
    mut progress: impl FnMut(u64) + Send,
) -> Result<VerifyReport, StorageError> {
    let mut pages = store.scan(PAGE_SIZE, None);
    let mut verifier = Verifier::new(options);
    while let Some(page) = pages.recv().await {
        let page = page?;
        // Hashing and signature checks are CPU work on all cores: keep them off the async workers.
        let (returned, still_valid) = tokio::task::spawn_blocking(move || {
            let ok = verifier.check(&page);
            (verifier, ok)
        })
        .await
        .expect("the verifier does not panic");
        verifier = returned;
        progress(verifier.entries_checked());
        if !still_valid {
            break;
        }
    }
    Ok(verifier.finish())
}

/// Totals of a written bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Entries written.
    pub entries: u64,
    /// The head the bundle ends at, as its header names it; `None` for an empty ledger.
    pub head: Option<BundleHead>,
}

/// Writes the ledger as an export bundle (docs/ledger-format.md §5) up to the head at the time of the
/// call; entries appended meanwhile are left for the next export.
pub async fn write_bundle<W: AsyncWrite + Unpin>(
    store: &Store,
    out: &mut W,
    mut progress: impl FnMut(u64) + Send,
) -> Result<ExportSummary, ExportError> {
    let head = match store.head().await? {
        Some(entry) => Some(BundleHead {
            seq: entry.seq,
            chain_hash: entry
                .chain_hash
                .parse::<Digest>()
                .map_err(|e| ExportError::CorruptHead(format!("seq {}: {e}", entry.seq)))?,
        }),
        None => None,
    };
    let keys = store
        .keys()
        .await?
        .into_iter()
        .map(|k| ledger_core::PublicKeyInfo {
            key_id: k.key_id,
            algorithm: k.algorithm,
            public_key: k.public_key,
        })
        .collect();
    let header = BundleHeader {
        format: BUNDLE_FORMAT.to_string(),
        created_at: ledger_core::entry::format_timestamp(OffsetDateTime::now_utc()),
        entries: head.as_ref().map_or(0, |h| h.seq),
        head: head.clone(),
        keys,
    };
    out.write_all(header.to_line().as_bytes()).await?;
    out.write_all(b"\n").await?;
    let mut written = 0u64;
    if let Some(head) = &head {
        let mut pages = store.scan(PAGE_SIZE, Some(head.seq as i64));
        let mut buffer = Vec::with_capacity(1 << 20);
        while let Some(page) = pages.recv().await {
            buffer.clear();
            for entry in page? {
                buffer.extend_from_slice(bundle::entry_line(&entry).as_bytes());
                buffer.push(b'\n');
                written += 1;
            }
            out.write_all(&buffer).await?;
            progress(written);
        }
    }
    out.flush().await?;
    Ok(ExportSummary { entries: written, head })
}

/// Why writing a bundle failed; what was written so far is an incomplete bundle.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the ledger failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The head entry's chain hash does not parse (an edited or damaged database); nothing was written.
    #[error("the ledger's head cannot be read ({0}); run `docketops verify`")]
    CorruptHead(String),
    /// Writing to the output failed.
    #[error("writing the bundle failed: {0}")]
    Io(#[from] std::io::Error),
}

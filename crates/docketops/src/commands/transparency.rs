//! Starting the transparency log in `serve`: the origin, the back-fill of a ledger written before it (or by
//! an older release), the witnesses, and the checkpoint task.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gateway::{Transparency, TransparencyConfig, WitnessEndpoint};
use ledger_core::LedgerSigningKey;
use ledger_core::tlog::checkpoint::{WitnessKey, is_valid_origin};
use storage::Store;

use super::serve::ServeArgs;

/// The settings row that keeps the origin chosen at first start.
const ORIGIN_SETTING: &str = "tlog_origin";

pub async fn start(args: &ServeArgs, store: &Store, key: LedgerSigningKey) -> anyhow::Result<Arc<Transparency>> {
    let origin = origin(args, store).await?;
    let witnesses = args
        .witnesses
        .iter()
        .map(|w| {
            let key = WitnessKey::parse(&w.key).with_context(|| format!("[[witnesses]] {}", w.url))?;
            anyhow::ensure!(
                w.url.starts_with("http://") || w.url.starts_with("https://"),
                "[[witnesses]] {}: the url must be http(s)://",
                w.url
            );
            Ok(WitnessEndpoint {
                url: w.url.clone(),
                key,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let quorum = args
        .witness_quorum
        .unwrap_or(witnesses.len() / 2 + usize::from(!witnesses.is_empty()));
    anyhow::ensure!(
        quorum <= witnesses.len(),
        "witness_quorum {quorum} is more than the {} witnesses configured",
        witnesses.len()
    );
    back_fill(store).await?;
    let config = TransparencyConfig {
        origin,
        interval: Duration::from_millis(args.checkpoint_interval_ms),
        witnesses,
        quorum,
        public: args.public_log,
    };
    tracing::info!(origin = %config.origin, witnesses = config.witnesses.len(), quorum, public = config.public, "transparency log ready");
    let transparency = Arc::new(Transparency::new(store.clone(), key, config));
    tokio::spawn(Arc::clone(&transparency).run());
    Ok(transparency)
}

/// The origin the transparency log signs checkpoints as, once a gateway has served this ledger.
pub async fn stored_origin(store: &Store) -> anyhow::Result<Option<String>> {
    Ok(store.setting(ORIGIN_SETTING).await?)
}

/// The flag's origin, else the stored one, else one derived from entry 1 (stored for next time).
async fn origin(args: &ServeArgs, store: &Store) -> anyhow::Result<String> {
    let stored = store.setting(ORIGIN_SETTING).await?;
    let origin = match (&args.log_origin, stored) {
        (Some(origin), stored) => {
            if let Some(previous) = stored.filter(|s| s != origin) {
                // Checkpoints of two origins in one log would each look like a fork of the other to a witness.
                anyhow::ensure!(
                    store.latest_checkpoint().await?.is_none(),
                    "--log-origin {origin:?}: this ledger's log signed checkpoints as {previous:?}, and a log keeps \
                     its origin for life (witnesses and auditors follow it by name); remove the flag or use {previous:?}"
                );
                tracing::warn!(%origin, %previous, "the log's origin changed before its first checkpoint");
            }
            origin.clone()
        }
        (None, Some(stored)) => stored,
        (None, None) => {
            let first = store.entries_after(0, 1).await?;
            let hash = first
                .first()
                .map(|e| e.chain_hash.trim_start_matches("sha256:")[..16].to_string());
            format!("docketops-ledger/{}", hash.context("the ledger has no entry 1")?)
        }
    };
    anyhow::ensure!(
        is_valid_origin(&origin),
        "log origin {origin:?}: it must be non-empty, without spaces or '+' (e.g. ledger.example.com/docketops)"
    );
    if store.setting(ORIGIN_SETTING).await?.as_deref() != Some(origin.as_str()) {
        store.set_setting(ORIGIN_SETTING, &origin).await?;
    }
    Ok(origin)
}

/// Integrates the entries the tree is missing before serving, logging progress (a ledger of a million
/// entries takes seconds).
async fn back_fill(store: &Store) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut logged = std::time::Instant::now();
    let done = store
        .tlog_catch_up(|p| {
            if logged.elapsed() > Duration::from_secs(2) {
                tracing::info!(
                    tree_size = p.tree_size,
                    head_seq = p.head_seq,
                    "building the transparency log's tree"
                );
                logged = std::time::Instant::now();
            }
        })
        .await
        .context("building the transparency log's tree")?;
    if started.elapsed() > Duration::from_secs(1) {
        tracing::info!(
            tree_size = done.tree_size,
            seconds = started.elapsed().as_secs(),
            "transparency log's tree built"
        );
    }
    Ok(())
}

//! The gateway's periodic work beside serving requests (`docketops serve` spawns each): approval expiry,
//! heartbeats, recovery of interrupted actions (which also records freezes a stopped gateway left
//! unrecorded), and the overview's counts.

/// Pending actions become EXPIRED on time even when nobody lists or decides them: checked every quarter
/// of the window, at most every 30 seconds, at least every second.
pub(crate) async fn expire_approvals_periodically(
    pipeline: std::sync::Arc<gateway::Pipeline>,
    window: std::time::Duration,
) {
    let period = (window / 4).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(30));
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        match pipeline.expire_due_approvals().await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "pending approvals expired"),
            Err(error) => tracing::warn!(%error, "cannot expire pending approvals"),
        }
    }
}

/// Heartbeats every third of the lease, on their own so that a slow recovery pass cannot delay them.
pub(crate) async fn heartbeat_periodically(pipeline: std::sync::Arc<gateway::Pipeline>) {
    let mut ticks = tokio::time::interval(pipeline.owner().lease() / 3);
    loop {
        ticks.tick().await;
        if let Err(error) = pipeline.heartbeat().await {
            tracing::warn!(%error, "cannot refresh this gateway's heartbeat");
        }
    }
}

/// Recovery of interrupted actions: at start, every third of the lease, and at once when an action's task
/// stops without finishing it.
pub(crate) async fn recover_periodically(pipeline: std::sync::Arc<gateway::Pipeline>) {
    let mut ticks = tokio::time::interval(pipeline.owner().lease() / 3);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = pipeline.owner().recovery_requested() => {}
        }
        match pipeline.recover_interrupted().await {
            Ok(0) => {}
            Ok(recovered) => tracing::warn!(recovered, "interrupted actions recovered"),
            Err(error) => tracing::warn!(%error, "cannot look for interrupted actions"),
        }
    }
}

/// The overview's counts (`storage::activity`) folded from the entries every 5 seconds, off the request
/// path; the first pass on a large ledger counts it all, page by page, logging its progress.
pub(crate) async fn count_activity_periodically(store: storage::Store) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(5));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let mut pages = 0u64;
        let counted = store
            .activity_catch_up(|progress| {
                pages += 1;
                if pages.is_multiple_of(100) {
                    tracing::info!(
                        progress.folded_seq,
                        progress.head_seq,
                        "counting the ledger for the overview"
                    );
                }
            })
            .await;
        if let Err(error) = counted {
            tracing::warn!(%error, "cannot bring the overview's counts up to date");
        }
    }
}

//! The writer task: gathers the next batch while the previous one commits, launches each batch's
//! transaction, and runs key rotations alone, between batches.

use std::sync::Arc;

use ledger_core::{ChainHead, LedgerSigningKey};
use tokio::sync::mpsc;

use super::signing::{Batch, Gathered, Presealed};
use super::transaction::transaction;
use super::{AppendError, Appended, Command, Reply, Shared};

/// The writer task's state: what it shares with its commit tasks, and the key it signs with (a rotation
/// replaces it).
pub(super) struct Writer {
    shared: Arc<Shared>,
    key: Arc<LedgerSigningKey>,
}

/// A transaction in progress; yields the head it left, or None if it failed.
type InFlight = tokio::task::JoinHandle<Option<ChainHead>>;

impl Writer {
    pub(super) fn new(shared: Arc<Shared>, key: LedgerSigningKey) -> Writer {
        Writer {
            shared,
            key: Arc::new(key),
        }
    }

    pub(super) async fn run(mut self, mut receiver: mpsc::Receiver<Command>) {
        let mut pending_rotation: Option<Command> = None;
        let mut in_flight: Option<InFlight> = None;
        // The head once every launched transaction has committed, when known.
        let mut expected: Option<ChainHead> = None;
        let mut closed = false;
        while !closed || pending_rotation.is_some() {
            if let Some(Command::Rotate { next, actor, reply }) = pending_rotation.take() {
                finish(&mut in_flight).await;
                expected = None;
                let _ = reply.send(self.rotate(*next, &actor).await);
                continue;
            }
            let mut gathered = Gathered::new(expected);
            // Gather while the previous transaction commits (or, when idle, until the first request).
            loop {
                if gathered.events.len() >= self.shared.config.max_batch || pending_rotation.is_some() || closed {
                    if in_flight.is_some() {
                        let done = finish(&mut in_flight).await;
                        gathered.previous_committed(done, &self.key).await;
                    }
                    break;
                }
                if in_flight.is_none() && !gathered.replies.is_empty() {
                    break;
                }
                let mut previous_done = None;
                tokio::select! {
                    done = wait(&mut in_flight) => previous_done = Some(done),
                    command = receiver.recv() => match command {
                        None => closed = true,
                        Some(rotate @ Command::Rotate { .. }) => pending_rotation = Some(rotate),
                        Some(Command::Append { events, reservation, reply }) => {
                            gathered.push(events, reservation, reply);
                            while gathered.events.len() < self.shared.config.max_batch {
                                match receiver.try_recv() {
                                    Ok(Command::Append { events, reservation, reply }) => {
                                        gathered.push(events, reservation, reply)
                                    }
                                    Ok(rotate) => {
                                        pending_rotation = Some(rotate);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            // Sign now, while the previous transaction is still committing.
                            gathered.sign_pending(&self.key).await;
                        }
                    },
                }
                if let Some(done) = previous_done {
                    in_flight = None;
                    gathered.previous_committed(done, &self.key).await;
                }
            }
            if gathered.replies.is_empty() {
                continue;
            }
            gathered.sign_pending(&self.key).await;
            let (batch, replies) = gathered.finish();
            // A reservation may replace its command's events by a refusal: the head is then not the one
            // signed ahead for, and the next batch signs again on the real one.
            expected = batch.presealed.as_ref().map(Presealed::tip);
            let (shared, key) = (Arc::clone(&self.shared), Arc::clone(&self.key));
            in_flight = Some(tokio::spawn(commit(shared, key, batch, replies)));
        }
        finish(&mut in_flight).await;
    }

    async fn rotate(&mut self, next: LedgerSigningKey, actor: &str) -> Result<Appended, AppendError> {
        let batch = Batch::plain(Vec::new());
        let (entries, _) = transaction(&self.shared, &self.key, batch, Some((&next, actor))).await?;
        let entries = entries.into_iter().flat_map(|(entries, _)| entries).collect();
        tracing::info!(
            from = self.key.key_id(),
            to = next.key_id(),
            "ledger signing key rotated"
        );
        self.key = Arc::new(next);
        Ok(Appended { entries, refused: None })
    }
}

async fn finish(in_flight: &mut Option<InFlight>) -> Option<ChainHead> {
    match in_flight.take() {
        Some(task) => task.await.ok().flatten(),
        None => None,
    }
}

/// Resolves when the transaction in flight ends; never, if there is none.
async fn wait(in_flight: &mut Option<InFlight>) -> Option<ChainHead> {
    match in_flight {
        Some(task) => task.await.ok().flatten(),
        None => std::future::pending().await,
    }
}

/// Runs one batch's transaction and answers its callers.
async fn commit(
    shared: Arc<Shared>,
    key: Arc<LedgerSigningKey>,
    batch: Batch,
    replies: Vec<Reply>,
) -> Option<ChainHead> {
    match transaction(&shared, &key, batch, None).await {
        Ok((appended, head)) => {
            for (reply, (entries, refused)) in replies.into_iter().zip(appended) {
                let _ = reply.send(Ok(Appended { entries, refused }));
            }
            // None when nothing was appended (an initialize that found a ledger): the next batch reads the head.
            head
        }
        Err(error) => {
            tracing::error!(%error, "ledger append failed; nothing of this batch was written");
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
            None
        }
    }
}

//! The export loop: read entries after the position, send them, move the position once the sink has
//! acknowledged them; on any failure go back to the position and send again after a backoff.
//!
//! Guarantee: at-least-once. The stored position only ever names an entry the sink acknowledged, so a
//! crash, a kill or an outage of the receiver loses nothing; what was sent after the last
//! acknowledgement is sent again (duplicates carry the same entry id).

use std::future::Future;
use std::time::{Duration, Instant};

use storage::{StorageError, Store};
use tracing::{debug, info, warn};

use crate::format::ActionTarget;
use crate::sink::{Sink, SinkError};

/// First wait after a failure; it doubles up to [`ExportConfig::max_backoff`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keep exporting as entries are appended, until shut down.
    Follow,
    /// Export up to the head as it was at start, then return.
    Once,
}

/// One named export's settings.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// The export's name: its position in `export_cursors`.
    pub name: String,
    /// Entries per batch (one write or request).
    pub batch: u32,
    /// Keep following the ledger, or stop at its head.
    pub mode: Mode,
    /// How often to look for new entries when caught up.
    pub poll_interval: Duration,
    /// The longest wait before a retry (the wait starts at 0.5 s and doubles after each failure).
    pub max_backoff: Duration,
    /// End with an error when deliveries have failed for this long (None: retry forever).
    pub give_up_after: Option<Duration>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// The export's name.
    pub name: String,
    /// The position the run started from (0: the beginning).
    pub resumed_after: u64,
    /// The position at the end: the last entry acknowledged.
    pub position: u64,
    /// Failures retried along the way.
    pub retries: u64,
}

/// Why a run ended with an error. The stored position stays at the last entry acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The export name is not 1 to 64 characters of `A-Z`, `a-z`, `0-9`, `.`, `_` and `-`.
    #[error("invalid export name {0:?}: use 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'")]
    InvalidName(String),
    /// Reading the export's position or the ledger's head at start failed (later database errors are
    /// retried).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The ledger holds another entry (or none) at the stored position than the one delivered: the
    /// database was replaced or restored. Nothing was sent.
    #[error(
        "export {name:?} is positioned after seq {seq} (entry {}), but the ledger holds {} there: the database was \
         replaced or restored. Check it with `docketops verify`, then move the export with `docketops siem reset`",
        expected.as_deref().unwrap_or("?"),
        found.as_deref().map_or_else(|| "no entry".to_string(), |id| format!("entry {id}"))
    )]
    CursorMismatch {
        /// The export's name.
        name: String,
        /// The stored position.
        seq: i64,
        /// The entry id stored with the position.
        expected: Option<String>,
        /// The id of the entry the ledger holds at that seq; `None` if it holds none.
        found: Option<String>,
    },
    /// The sink failed in a way retrying cannot heal (see [`SinkError::is_transient`]).
    #[error(transparent)]
    Sink(SinkError),
    /// Deliveries kept failing for [`ExportConfig::give_up_after`].
    #[error("gave up after {}s of failed deliveries: {last}", after.as_secs())]
    GaveUp {
        /// How long deliveries had failed.
        after: Duration,
        /// The last failure's message.
        last: String,
    },
}

/// An export name: short, and safe in logs and file names.
pub fn validate_name(name: &str) -> Result<(), ExportError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ExportError::InvalidName(name.to_string()))
    }
}

/// Why one step failed: retried unless the sink says it will not heal.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("reading the ledger failed: {0}")]
    Storage(#[from] StorageError),
    #[error("seq {0} is missing from the ledger (run `docketops verify`); waiting for it")]
    Gap(u64),
}

enum Progress {
    /// A full batch went out: more entries are probably waiting.
    More,
    /// Caught up (or waiting for a batch to settle).
    Idle,
}

struct Positions {
    /// The last entry acknowledged (and stored as the export's position).
    acknowledged: u64,
    /// The last entry sent.
    sent: u64,
}

/// Runs the export `config.name` into `sink` until `shutdown` completes (follow mode) or the head at start
/// is delivered (once mode).
pub async fn run_export(
    store: &Store,
    sink: &mut Sink,
    config: &ExportConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<ExportReport, ExportError> {
    validate_name(&config.name)?;
    let name = config.name.as_str();
    let start = resume_position(store, name).await?;
    let head = store.head().await?.map_or(0, |entry| entry.seq);
    let target = match config.mode {
        Mode::Once => Some(head),
        Mode::Follow => None,
    };
    info!(export = name, resume_after = start, head, "export starting");
    let mut positions = Positions {
        acknowledged: start,
        sent: start,
    };
    let mut retries = 0;
    let mut backoff = INITIAL_BACKOFF;
    let mut failing_since: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        if target.is_some_and(|target| positions.acknowledged >= target) {
            info!(export = name, position = positions.acknowledged, "export complete");
            break;
        }
        let result = tokio::select! {
            result = step(store, sink, config, target, &mut positions) => result,
            () = &mut shutdown => break,
        };
        let wait = match result {
            Ok(progress) => {
                backoff = INITIAL_BACKOFF;
                failing_since = None;
                match progress {
                    Progress::More => continue,
                    Progress::Idle => match (config.mode, sink.next_delivery_in()) {
                        (Mode::Once, Some(settle)) => settle,
                        (_, settle) => settle.map_or(config.poll_interval, |s| s.min(config.poll_interval)),
                    },
                }
            }
            Err(StepError::Sink(error)) if !error.is_transient() => {
                sink.reset();
                return Err(ExportError::Sink(error));
            }
            Err(error) => {
                retries += 1;
                let since = *failing_since.get_or_insert_with(Instant::now);
                if let Some(limit) = config.give_up_after
                    && since.elapsed() >= limit
                {
                    sink.reset();
                    return Err(ExportError::GaveUp {
                        after: since.elapsed(),
                        last: error.to_string(),
                    });
                }
                warn!(
                    export = name,
                    error = %error,
                    retry_in_ms = backoff.as_millis() as u64,
                    resend_from = positions.acknowledged + 1,
                    "delivery failed; will resend from the export's position"
                );
                // What was sent and not acknowledged may be lost: send it again.
                sink.reset();
                positions.sent = positions.acknowledged;
                let wait = backoff;
                backoff = (backoff * 2).min(config.max_backoff.max(INITIAL_BACKOFF));
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = &mut shutdown => break,
        }
    }
    sink.close().await;
    info!(export = name, position = positions.acknowledged, "export stopped");
    Ok(ExportReport {
        name: name.to_string(),
        resumed_after: start,
        position: positions.acknowledged,
        retries,
    })
}

/// One round: the next batch out, then whatever the sink acknowledged into the stored position.
async fn step(
    store: &Store,
    sink: &mut Sink,
    config: &ExportConfig,
    target: Option<u64>,
    positions: &mut Positions,
) -> Result<Progress, StepError> {
    let limit = match target {
        Some(target) => target.saturating_sub(positions.sent).min(u64::from(config.batch)) as u32,
        None => config.batch,
    };
    let mut batch = if limit > 0 {
        store.entries_after(positions.sent as i64, limit).await?
    } else {
        Vec::new()
    };
    // Appends commit in seq order, so a gap is damage, not a race: never send past it.
    let expected = positions.sent + 1;
    if batch.first().is_some_and(|first| first.seq != expected) {
        return Err(StepError::Gap(expected));
    }
    if let Some(end) = batch.windows(2).position(|pair| pair[1].seq != pair[0].seq + 1) {
        batch.truncate(end + 1);
    }
    let full = limit > 0 && batch.len() == limit as usize;
    // ocsf and ecs name each entry's object; entries of actions requested before this run need its row.
    for action_id in sink.unknown_actions(&batch) {
        let target = store.action(&action_id).await?.map(|row| ActionTarget::from_row(&row));
        sink.remember(action_id, target.unwrap_or_default());
    }
    if let (Some(first), Some(last)) = (batch.first(), batch.last()) {
        sink.send(&batch).await?;
        debug!(export = config.name.as_str(), from = first.seq, to = last.seq, "sent");
        positions.sent = last.seq;
    }
    if let Some(position) = sink.delivered()? {
        store
            .advance_export_cursor(&config.name, position.seq as i64, &position.entry_id)
            .await?;
        info!(
            export = config.name.as_str(),
            from = positions.acknowledged + 1,
            to = position.seq,
            "delivered"
        );
        positions.acknowledged = position.seq;
    }
    Ok(if full { Progress::More } else { Progress::Idle })
}

/// The stored position of `name` (0 for a new export), checked against the ledger: the entry there must
/// still be the one that was delivered.
async fn resume_position(store: &Store, name: &str) -> Result<u64, ExportError> {
    let Some(cursor) = store.export_cursor(name).await? else {
        return Ok(0);
    };
    if cursor.last_seq <= 0 {
        return Ok(0);
    }
    let found = store
        .entries_after(cursor.last_seq - 1, 1)
        .await?
        .into_iter()
        .find(|entry| entry.seq as i64 == cursor.last_seq);
    match (&found, &cursor.last_entry_id) {
        (Some(entry), Some(id)) if entry.id == *id => Ok(cursor.last_seq as u64),
        _ => Err(ExportError::CursorMismatch {
            name: name.to_string(),
            seq: cursor.last_seq,
            expected: cursor.last_entry_id,
            found: found.map(|entry| entry.id),
        }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn export_names_are_plain() {
        for good in ["siem", "splunk-prod", "a.b_c-1", &"x".repeat(64)] {
            assert!(super::validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(65)] {
            assert!(super::validate_name(bad).is_err(), "{bad}");
        }
    }
}

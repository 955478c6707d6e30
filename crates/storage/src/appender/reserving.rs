//! A batch's budget reservations (`Ledger::append_reserving`): decided inside the batch's transaction, after
//! its lock and before its entries, each refused command's events replaced by its refusal.

use ledger_core::{Entry, PreparedEvent};
use time::OffsetDateTime;

use super::{AppendError, Refusal, Reservation};
use crate::{Exceeded, Spend, Window};

/// Per command of a batch: its entries, and the window a reservation of it would exceed (its entries are then
/// the refusal's).
pub(super) type PerCommand = Vec<(Vec<Entry>, Option<Exceeded>)>;

/// The reservations of a batch's commands and what became of them.
pub(super) struct Reservations {
    requests: Vec<Option<(Vec<Window>, Spend)>>,
    refusals: Vec<Option<Refusal>>,
    /// Per command, the window its reservation would exceed.
    pub(super) refused: Vec<Option<Exceeded>>,
}

impl Reservations {
    /// One per command (`None` for a command without a reservation).
    pub(super) fn of(reservations: Vec<Option<Reservation>>) -> Reservations {
        let refused = vec![None; reservations.len()];
        let (requests, refusals) = reservations
            .into_iter()
            .map(|reservation| match reservation {
                Some(r) => (Some((r.windows, r.spend)), Some(r.refusal)),
                None => (None, None),
            })
            .unzip();
        Reservations {
            requests,
            refusals,
            refused,
        }
    }

    /// How many commands reserve.
    pub(super) fn count(&self) -> usize {
        self.requests.iter().flatten().count()
    }

    /// The reservations to decide, in command order.
    pub(super) fn asked(&self) -> Vec<(&[Window], &Spend)> {
        self.requests
            .iter()
            .flatten()
            .map(|(windows, spend)| (windows.as_slice(), spend))
            .collect()
    }

    /// Takes the verdicts (in the order of [`Reservations::asked`]); whether any was refused.
    pub(super) fn decided(&mut self, verdicts: Vec<Option<Exceeded>>) -> bool {
        let commands = self
            .requests
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_some())
            .map(|(i, _)| i);
        for (command, verdict) in commands.zip(verdicts) {
            self.refused[command] = verdict;
        }
        self.refused.iter().any(Option::is_some)
    }

    /// The batch's events with each refused command's replaced by its refusal (one entry); `sizes` follow.
    pub(super) fn refuse(
        &mut self,
        events: Vec<PreparedEvent>,
        sizes: &mut [usize],
    ) -> Result<Vec<PreparedEvent>, AppendError> {
        let now = OffsetDateTime::now_utc();
        let mut events = events.into_iter();
        let mut kept = Vec::new();
        for (command, size) in sizes.iter_mut().enumerate() {
            let own: Vec<PreparedEvent> = events.by_ref().take(*size).collect();
            match (&self.refused[command], self.refusals[command].take()) {
                (Some(exceeded), Some(refusal)) => {
                    kept.push(PreparedEvent::prepare(refusal(exceeded), now)?);
                    *size = 1;
                }
                _ => kept.extend(own),
            }
        }
        Ok(kept)
    }
}

/// The committed entries (after the `skip` the callers do not get back) split per command, with each
/// command's refusal; a rotation's entry, which follows the (empty) events of its one command, goes to it.
pub(super) fn per_command(
    sealed: Vec<Entry>,
    skip: usize,
    sizes: Vec<usize>,
    refused: Vec<Option<Exceeded>>,
) -> PerCommand {
    let mut entries = sealed.into_iter().skip(skip);
    let mut split: PerCommand = sizes
        .into_iter()
        .zip(refused)
        .map(|(size, refused)| (entries.by_ref().take(size).collect::<Vec<Entry>>(), refused))
        .collect();
    if let Some(last) = split.last_mut() {
        last.0.extend(entries);
    }
    split
}

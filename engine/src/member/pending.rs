//! One proposed transaction between its proposal and its outcome, and the table through
//! which the delivery sink hands each local transaction its verdict.
//!
//! The origin registers the verdict slot before it hands the proposal to the group
//! core, under the lock that numbers proposals, so a verdict can never arrive before
//! its slot exists. It then waits, in order, for the delivery here (the group core's
//! answer: a failure means the outcome is unknown), for the verdict (the sink sends it
//! right after certification), and, for a commit, for the local watermark to pass the
//! seqno, so the caller reads its own write next; at consistency AFTER, then for every
//! member's acknowledgement (`after.rs`). Every wait is bounded.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tutti_storage::store::SnapshotHold;
use tutti_storage::Seqno;

use super::error::TxnError;
use super::Inner;
use crate::certifier::Verdict;
use crate::consistency::AfterDone;
use crate::group::ProposalTicket;

/// A local transaction's verdict, as the sink hands it over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decided {
    pub(crate) seqno: Seqno,
    pub(crate) verdict: Verdict,
}

impl Decided {
    /// The commit's seqno, or the abort as an error.
    pub(crate) fn into_seqno(self) -> Result<Seqno, TxnError> {
        match self.verdict {
            Verdict::Commit { .. } => Ok(self.seqno),
            Verdict::Abort(reason) => Err(TxnError::from_abort(reason)),
        }
    }
}

/// One-shot slots through which the sink hands local transactions something, by
/// transaction number: their verdicts ([`VerdictSlots`]), the end of their AFTER waits
/// ([`AfterSlots`]).
pub(crate) struct Slots<T> {
    slots: Mutex<HashMap<u64, flume::Sender<T>>>,
}

impl<T> Default for Slots<T> {
    fn default() -> Slots<T> {
        Slots {
            slots: Mutex::default(),
        }
    }
}

/// Verdict slots of local transactions.
pub(crate) type VerdictSlots = Slots<Decided>;
/// Slots of local AFTER transactions, filled when every member acknowledged them.
pub(crate) type AfterSlots = Slots<AfterDone>;

impl<T> Slots<T> {
    pub(crate) fn register(&self, number: u64) -> flume::Receiver<T> {
        let (sender, receiver) = flume::bounded(1);
        self.slots.lock().insert(number, sender);
        receiver
    }

    pub(crate) fn decide(&self, number: u64, decided: T) {
        if let Some(slot) = self.slots.lock().remove(&number) {
            // The waiter may be gone (its wait ended): nothing to tell.
            let _ = slot.send(decided);
        }
    }

    pub(crate) fn forget(&self, number: u64) {
        self.slots.lock().remove(&number);
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.lock().len()
    }
}

/// A proposed transaction whose outcome is awaited.
pub(crate) struct Proposed {
    pub(crate) number: u64,
    pub(crate) ticket: ProposalTicket,
    pub(crate) verdict: flume::Receiver<Decided>,
    /// Keeps the snapshot readable (and below the low watermark) until the verdict.
    pub(crate) hold: Option<SnapshotHold>,
    /// Consistency AFTER: the end of its wait for every member's acknowledgement.
    pub(crate) after: Option<flume::Receiver<AfterDone>>,
}

impl Proposed {
    /// Waits asynchronously (on a monoio runtime with timers) for the outcome; returns
    /// the commit's seqno once the local watermark passed it. Records the commit latency
    /// (from the proposal's submission), whatever the outcome.
    pub(crate) async fn outcome(self, inner: &Arc<Inner>) -> Result<Seqno, TxnError> {
        let (submitted, number) = (self.ticket.submitted_at(), self.number);
        let outcome = self.wait_outcome(inner).await;
        inner.metrics.commit.record_since(submitted);
        inner.after_slots.forget(number);
        outcome
    }

    /// Blocks (not on a monoio thread) for the outcome, as [`Proposed::outcome`].
    pub(crate) fn outcome_blocking(self, inner: &Arc<Inner>) -> Result<Seqno, TxnError> {
        let (submitted, number) = (self.ticket.submitted_at(), self.number);
        let outcome = self.wait_outcome_blocking(inner);
        inner.metrics.commit.record_since(submitted);
        inner.after_slots.forget(number);
        outcome
    }

    async fn wait_outcome(self, inner: &Arc<Inner>) -> Result<Seqno, TxnError> {
        let wait = inner.options.commit_wait;
        let Proposed {
            number,
            ticket,
            verdict,
            hold,
            after,
        } = self;
        let delivered = monoio::time::timeout(wait, ticket.delivered()).await;
        match delivered {
            Ok(Ok(_)) => {}
            Ok(Err(failure)) => return Err(inner.unknown(number, &failure.to_string())),
            Err(_) => return Err(inner.unknown(number, &format!("not delivered within {wait:?}"))),
        }
        let Ok(Ok(decided)) = monoio::time::timeout(wait, verdict.recv_async()).await else {
            return Err(inner.unknown(number, "no verdict after delivery"));
        };
        drop(hold);
        let seqno = decided.into_seqno()?;
        if monoio::time::timeout(wait, inner.watermark.reached(seqno))
            .await
            .is_err()
        {
            return Err(TxnError::wait_ended("local apply of the commit", wait));
        }
        if let Some(after) = after {
            if !matches!(
                monoio::time::timeout(wait, after.recv_async()).await,
                Ok(Ok(_))
            ) {
                return Err(TxnError::NotAppliedEverywhere { seqno, wait });
            }
        }
        Ok(seqno)
    }

    fn wait_outcome_blocking(self, inner: &Arc<Inner>) -> Result<Seqno, TxnError> {
        let wait = inner.options.commit_wait;
        let deadline = Instant::now() + wait;
        let Proposed {
            number,
            ticket,
            verdict,
            hold,
            after,
        } = self;
        if let Err(failure) = ticket.wait(wait) {
            return Err(inner.unknown(number, &failure.to_string()));
        }
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let Ok(decided) = verdict.recv_timeout(left) else {
            return Err(inner.unknown(number, "no verdict after delivery"));
        };
        drop(hold);
        let seqno = decided.into_seqno()?;
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        if !inner.watermark.wait_until(seqno, left) {
            return Err(TxnError::wait_ended("local apply of the commit", wait));
        }
        if let Some(after) = after {
            if after.recv_timeout(wait).is_err() {
                return Err(TxnError::NotAppliedEverywhere { seqno, wait });
            }
        }
        Ok(seqno)
    }
}

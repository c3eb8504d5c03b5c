//! Consistency AFTER on the member: acknowledging the AFTER transactions this member
//! applied, and handing its own sessions the end of their waits.
//!
//! ```text
//!  sink: AFTER commit of another origin at s ─► due = max(due, s), wake the acker
//!  acker thread: wait until watermark >= due ─► propose Applied { me, watermark }
//!  sink: Replica::take_after_done ─► own transaction? ─► its AfterSlots slot
//!  session: local apply, then its slot (bounded by commit_wait)
//! ```
//!
//! One acknowledgement carries the watermark, so it covers every AFTER transaction at or
//! below it: under load the acker proposes one entry for many transactions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tutti_storage::Seqno;

use super::Inner;
use crate::consistency::AfterDone;
use crate::txn::{encode_message, EngineMessage};

/// How long the acker sleeps between checks that the member is stopping.
const ACKER_POLL: Duration = Duration::from_millis(50);
/// How long the acker waits before proposing again after the group refused a proposal
/// (its queue was full, or the member is not in normal status).
const ACKER_RETRY: Duration = Duration::from_millis(2);

/// What the sink tells the acker: the highest AFTER commit of another origin delivered.
pub(crate) struct AckDue {
    due: AtomicU64,
    wake: (flume::Sender<()>, flume::Receiver<()>),
}

impl Default for AckDue {
    fn default() -> AckDue {
        AckDue {
            due: AtomicU64::new(0),
            wake: flume::bounded(1),
        }
    }
}

impl AckDue {
    /// The AFTER transaction at `seqno` is delivered here: acknowledge it once applied.
    pub(crate) fn note(&self, seqno: Seqno) {
        self.due.fetch_max(seqno.0, Ordering::AcqRel);
        // A wake-up already pending is enough.
        let _ = self.wake.0.try_send(());
    }
}

impl Inner {
    /// Hands every ended AFTER wait of this member's own transactions to its session.
    pub(crate) fn after_done(&self, done: Vec<AfterDone>) {
        let Some(&(member, incarnation)) = self.identity.get() else {
            return;
        };
        for done in done {
            if done.txn.origin == member && done.txn.incarnation == incarnation {
                self.after_slots.decide(done.txn.number, done);
            }
        }
    }

    /// The acker thread's loop: proposes `Applied` with the watermark once it passed the
    /// highest AFTER transaction due, until the member stops.
    pub(crate) fn run_acker(&self) {
        let mut acked = Seqno::ZERO;
        while !self.stopping.load(Ordering::Acquire) {
            let due = Seqno(self.ack_due.due.load(Ordering::Acquire));
            if due <= acked {
                let _ = self.ack_due.wake.1.recv_timeout(ACKER_POLL);
                continue;
            }
            if !self.watermark.wait_until(due, ACKER_POLL) {
                continue;
            }
            let Some(&(member, _)) = self.identity.get() else {
                continue;
            };
            let seqno = self.watermark.get();
            let mut payload = Vec::new();
            encode_message(&EngineMessage::Applied { member, seqno }, &mut payload);
            if self.group().submit(payload.into()).is_ok() {
                acked = seqno;
            } else {
                std::thread::sleep(ACKER_RETRY);
            }
        }
    }
}

//! The member's side of flow control: the gate a transaction passes before it runs, the
//! count of each proposal, and the periodic report this member orders for the others.

use std::time::{Duration, Instant};

use super::Inner;
use crate::flow_control::{FlowMode, FlowReport, FlowStats};
use crate::txn::{encode_message, EngineMessage};

/// What this member last reported, to skip reports of an idle member.
#[derive(Default)]
pub(crate) struct LastReport {
    at: Option<Instant>,
    counts: (u64, u64, u64, u64),
}

impl Inner {
    /// How long a throttled transaction may still wait, and the wait before it may run.
    fn flow_wait(&self, waited: Duration) -> Option<Duration> {
        let wait = self.flow.lock().check(self.started.elapsed()).err()?;
        let left = self.options.commit_wait.checked_sub(waited)?;
        Some(wait.min(left))
    }

    /// Waits while this member's quota for the period is used up, never longer than
    /// `commit_wait` in all (then the transaction goes anyway).
    pub(crate) async fn flow_gate(&self) {
        let started = Instant::now();
        let mut waited = false;
        while let Some(wait) = self.flow_wait(started.elapsed()) {
            waited = true;
            monoio::time::sleep(wait).await;
        }
        if waited {
            self.flow.lock().on_waited(started.elapsed());
        }
    }

    /// [`Inner::flow_gate`], blocking the calling thread.
    pub(crate) fn flow_gate_blocking(&self) {
        let started = Instant::now();
        let mut waited = false;
        while let Some(wait) = self.flow_wait(started.elapsed()) {
            waited = true;
            std::thread::sleep(wait);
        }
        if waited {
            self.flow.lock().on_waited(started.elapsed());
        }
    }

    /// Ends the flow control period when it is over and, once per period, orders this
    /// member's report (unless nothing moved since the last one).
    pub(crate) fn flow_tick(&self, last: &mut LastReport) {
        let Some(&(me, _)) = self.identity.get() else {
            return;
        };
        let now = Instant::now();
        let options = {
            let mut flow = self.flow.lock();
            flow.tick(self.started.elapsed(), me);
            flow.options()
        };
        if options.mode == FlowMode::Disabled
            || last
                .at
                .is_some_and(|at| now.duration_since(at) < options.period)
        {
            return;
        }
        let appliers = self.appliers.stats();
        let group = self.group().stats();
        let report = FlowReport {
            member: me,
            certifier_queue: group.commit_seqno.saturating_sub(group.last_delivered),
            applier_queue: appliers.queued_txns,
            applied: appliers.applied_txns,
            proposed: self
                .local_proposed
                .load(std::sync::atomic::Ordering::Relaxed),
        };
        let counts = (
            report.certifier_queue,
            report.applier_queue,
            report.applied,
            report.proposed,
        );
        last.at = Some(now);
        if counts == last.counts {
            return;
        }
        last.counts = counts;
        let mut payload = Vec::new();
        encode_message(&EngineMessage::FlowReport(report), &mut payload);
        // Fire and forget: the next period reports again.
        let _ = self.group().submit(payload.into());
    }

    /// Flow control's counters, for the faces.
    pub(crate) fn flow_stats(&self) -> FlowStats {
        self.flow.lock().stats()
    }
}

impl super::Member {
    /// Flow control's mode, quota and throttle counters.
    pub fn flow_stats(&self) -> FlowStats {
        self.inner.flow_stats()
    }
}

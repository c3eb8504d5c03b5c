//! Consistency levels, judged over the recorded client histories:
//!
//! - `consistency_before`: a request at BEFORE or `BEFORE_AND_AFTER` runs at a snapshot
//!   that holds every commit acknowledged to any client, anywhere, before it started;
//! - `consistency_after`: once an AFTER (or `BEFORE_AND_AFTER`) commit at seqno s returned
//!   to its client, every later transaction, at any level, on a member life that
//!   acknowledged it runs at a snapshot that holds s (members that left were dropped from
//!   the wait and owe nothing);
//! - `consistency_failover`: a request at any level but EVENTUAL that started on the
//!   primary of a single-primary group runs at a snapshot that holds every commit
//!   ordered before the election that made it primary (no stale read), and certification
//!   never aborts it for a write ordered before that election (no spurious conflict).

use std::collections::BTreeMap;

use crate::certifier::{AbortReason, Verdict};
use crate::consistency::Consistency;

use super::transactions::TxnRecords;
use super::{Failure, StreamId};

/// What the consistency checkers remember between events.
#[derive(Default)]
pub(in crate::sim) struct ConsistencyRecords {
    /// The highest seqno acknowledged to a client so far.
    max_acknowledged: u64,
    /// Per member life: the highest AFTER commit that returned after that life
    /// acknowledged it.
    after_must_see: BTreeMap<StreamId, u64>,
    /// When each member life started.
    life_started: BTreeMap<StreamId, u64>,
}

/// One run of a request's body, as the checkers see it.
pub(in crate::sim) struct Execution {
    /// Where it ran.
    pub(in crate::sim) stream: StreamId,
    /// The request's level.
    pub(in crate::sim) level: Consistency,
    /// The highest seqno acknowledged anywhere when the request started.
    pub(in crate::sim) must_see: u64,
    /// The election seqno of its member, when it started on a single-primary's primary.
    pub(in crate::sim) primary_since: Option<u64>,
    /// The snapshot it ran at (the member's watermark).
    pub(in crate::sim) snapshot: u64,
}

impl ConsistencyRecords {
    /// The highest seqno acknowledged to a client so far.
    pub(in crate::sim) fn max_acknowledged(&self) -> u64 {
        self.max_acknowledged
    }

    pub(in crate::sim) fn on_acknowledged(&mut self, seqno: u64) {
        self.max_acknowledged = self.max_acknowledged.max(seqno);
    }

    pub(in crate::sim) fn on_life_started(&mut self, stream: StreamId, now: u64) {
        self.life_started.insert(stream, now);
    }

    /// The AFTER commit at `seqno`, proposed at `proposed_at`, returned; `acked` are the
    /// current lives of the members that acknowledged it (its origin included). A life
    /// that started after the proposal may owe its acknowledgement to an earlier life of
    /// its member, so only lives older than the proposal are bound by it.
    pub(in crate::sim) fn on_after_returned(
        &mut self,
        seqno: u64,
        proposed_at: u64,
        acked: &[StreamId],
    ) {
        for stream in acked {
            let started = self.life_started.get(stream).copied().unwrap_or(u64::MAX);
            if started <= proposed_at {
                let must_see = self.after_must_see.entry(*stream).or_default();
                *must_see = (*must_see).max(seqno);
            }
        }
    }
}

/// Judges one execution.
pub(in crate::sim) fn check_execution(
    records: &ConsistencyRecords,
    txns: &TxnRecords,
    run: &Execution,
) -> Result<(), Failure> {
    let (node, life) = run.stream;
    if run.level.syncs_before() && run.snapshot < run.must_see {
        return Err(Failure {
            property: "consistency_before",
            detail: format!(
                "node {node} life {life}: a {} request ran at snapshot {}, but seqno {} was acknowledged before it started",
                run.level, run.snapshot, run.must_see
            ),
        });
    }
    if let Some(&after) = records.after_must_see.get(&run.stream) {
        if run.snapshot < after {
            return Err(Failure {
                property: "consistency_after",
                detail: format!(
                    "node {node} life {life}: a {} request ran at snapshot {}, after the AFTER commit at seqno {after} this life acknowledged returned",
                    run.level, run.snapshot
                ),
            });
        }
    }
    if let (true, Some(since)) = (run.level.holds_on_failover(), run.primary_since) {
        let last_before = txns
            .certified
            .range(..since)
            .rev()
            .find(|(_, certified)| certified.verdict.is_commit())
            .map_or(0, |(&seqno, _)| seqno);
        if run.snapshot < last_before {
            return Err(Failure {
                property: "consistency_failover",
                detail: format!(
                    "node {node} life {life}: primary since seqno {since}, a {} request ran at snapshot {}, before the commit at seqno {last_before} (a stale read)",
                    run.level, run.snapshot
                ),
            });
        }
    }
    Ok(())
}

/// Judges the verdict of a request that started on a primary: no conflict with a write
/// ordered before the election.
pub(in crate::sim) fn check_failover_verdict(
    stream: StreamId,
    level: Consistency,
    primary_since: Option<u64>,
    verdict: Verdict,
) -> Result<(), Failure> {
    let (Some(since), true) = (primary_since, level.holds_on_failover()) else {
        return Ok(());
    };
    match verdict {
        Verdict::Abort(AbortReason::Conflict { winner_seqno, .. }) if winner_seqno.0 < since => {
            Err(Failure {
                property: "consistency_failover",
                detail: format!(
                    "node {} life {}: primary since seqno {since}, a {level} request aborted on a write at seqno {winner_seqno} ordered before the election (a spurious conflict)",
                    stream.0, stream.1
                ),
            })
        }
        _ => Ok(()),
    }
}

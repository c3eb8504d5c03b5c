//! Certification: the deterministic decision, on every member, of whether a delivered
//! transaction commits or aborts (DESIGN.md section 5).
//!
//! The [`Certifier`] is a sans-IO state machine: delivered transactions come in as
//! [`CertificationRequest`]s in seqno order, low watermarks and ONLINE-set changes come
//! in at their positions in the total order, and verdicts come out. It owns the write-set
//! index (its only writer), the low-watermark table, the verdict window and the counters.
//! It must never read a clock, draw a random number, start a thread or do IO, and no
//! verdict may depend on anything but the sequence of calls it was given: members that
//! reclaim physically at different moments decide identically.
//!
//! ```text
//!  delivered TxnMessage ──► CertificationRequest ──► certify() ──► Verdict ──► appliers
//!                                                       │  ▲
//!  ordered LowWatermark ──► on_low_watermark() ──► gc ──┤  │ last writers
//!  ordered ONLINE set   ──► set_members()      ──► gc ──┤  │
//!                                                       ▼  │
//!                         sessions' early checks ◄── index (IndexWriter / IndexReader)
//!                                                       ▲
//!  between batches      ──► reclaim_step() ─────────────┘ (physical removal only)
//! ```
//!
//! # Verdict rules, in the order they are applied
//!
//! For a request at seqno N with snapshot S, checked keys C, written keys W and local
//! dependencies D, where `live(k)` is the index's last writer of k if it is above the gc
//! seqno and nothing otherwise:
//!
//! 1. More than `REQUEST_KEYS_MAX` keys in C or in W, or more than `LOCAL_DEPS_MAX`
//!    dependencies: abort, [`AbortReason::TooLarge`].
//! 2. S, or any key's observation in C, below the gc seqno: abort,
//!    [`AbortReason::SnapshotTooOld`] (writes after it may be dead and invisible).
//! 3. Each d in D, in order: d = 0 or d >= N, or d never certified: abort,
//!    `DependencyNotCertified`; d older than the verdict window: `DependencyForgotten`;
//!    d aborted: `DependencyAborted` (see [`verdict`] for the window).
//! 4. Each (k, observed) in C, in order: `live(k) > observed` and `live(k)` not in D:
//!    abort, [`AbortReason::Conflict`] with k and `live(k)`. (A writer in D passed rule
//!    3, so it committed.)
//! 5. The distinct keys of W with no live entry, counted per shard: a shard whose live
//!    entries plus these would exceed its limit: abort, [`AbortReason::IndexFull`].
//! 6. Else commit: `depends_on = max(gc seqno, live(k) for k in C and W)`, then
//!    `index[k] = N` for each k in W.
//!
//! Every outcome is remembered in the verdict window, for later requests' D.

pub mod constants;
pub mod gc;
pub mod index;
pub mod request;
mod state;
pub mod stats;
mod sync;
pub mod verdict;

use std::sync::Arc;

pub use gc::{LowWatermarks, TooManyMembers};
pub use index::{IndexConfig, IndexConfigError, IndexReader, IndexWriter, Located, ShardFull};
pub use request::{CertificationRequest, CheckedKey, Isolation, KeyHash};
pub use state::StateError;
pub use stats::{CertifierStats, StatsSnapshot};
pub use verdict::{AbortReason, Remembered, Verdict, VerdictWindow};

use tutti_net::gcs::MemberId;
use tutti_storage::Seqno;

use constants::{LOCAL_DEPS_MAX, PREFETCH_AHEAD_TXNS, REQUEST_KEYS_MAX};
use stats::AbortKind;

/// The certifier: decides verdicts and keeps the state they depend on.
pub struct Certifier {
    /// The write-set index; the certifier is its only writer.
    index: IndexWriter,
    /// ONLINE members' low watermarks, which yield the gc seqno.
    low_watermarks: LowWatermarks,
    /// Recent verdicts, for `local_deps`.
    verdicts: VerdictWindow,
    /// Counters shared with other threads.
    stats: Arc<CertifierStats>,
    /// Scratch for the distinct written keys without a live entry (reused: no allocation
    /// per transaction once warm).
    new_keys: Vec<u64>,
    /// Scratch for (shard, new entries) pairs.
    new_per_shard: Vec<(usize, usize)>,
    /// Scratch: where each written key of the current request was found.
    located: Vec<Located>,
}

impl Certifier {
    /// A certifier with an empty index of the given geometry, gc seqno 0, no members.
    pub fn new(index: IndexConfig) -> Result<Certifier, IndexConfigError> {
        Ok(Certifier::from_parts(
            IndexWriter::new(index)?,
            LowWatermarks::new(),
            VerdictWindow::new(),
        ))
    }

    fn from_parts(
        index: IndexWriter,
        low_watermarks: LowWatermarks,
        verdicts: VerdictWindow,
    ) -> Certifier {
        let stats = Arc::new(CertifierStats::default());
        stats.set_index_state(index.entries_held(), index.gc_seqno());
        Certifier {
            index,
            low_watermarks,
            verdicts,
            stats,
            new_keys: Vec::new(),
            new_per_shard: Vec::new(),
            located: Vec::new(),
        }
    }

    /// Certifies the transaction delivered at `request.seqno`. Requests come in seqno
    /// order (asserted): the total order delivers them so.
    pub fn certify(&mut self, request: &CertificationRequest) -> Verdict {
        assert!(
            request.seqno > self.verdicts.top(),
            "certify seqno {} after {}: requests come in seqno order",
            request.seqno,
            self.verdicts.top()
        );
        match self.decide(request) {
            Ok(depends_on) => {
                for (&key, &located) in request.written.iter().zip(&self.located) {
                    self.index.set_located(key, located, request.seqno);
                }
                self.verdicts.record(request.seqno, Remembered::Committed);
                self.stats
                    .on_commit(request.seqno, self.index.entries_held());
                Verdict::Commit { depends_on }
            }
            Err(reason) => {
                self.verdicts.record(request.seqno, Remembered::Aborted);
                self.stats.on_abort(abort_kind(reason));
                Verdict::Abort(reason)
            }
        }
    }

    /// Aborts the transaction delivered at `seqno` without looking at its keys (its
    /// origin may not write there), and remembers the abort for later local deps.
    pub fn refuse(&mut self, seqno: Seqno, reason: AbortReason) -> Verdict {
        assert!(
            seqno > self.verdicts.top(),
            "refuse seqno {seqno} after {}: requests come in seqno order",
            self.verdicts.top()
        );
        self.verdicts.record(seqno, Remembered::Aborted);
        self.stats.on_abort(abort_kind(reason));
        Verdict::Abort(reason)
    }

    /// Certifies a batch of delivered transactions in order, appending one verdict per
    /// request to `verdicts`. Same verdicts as calling [`Certifier::certify`] on each; it
    /// only starts loading the index slots of the transactions `PREFETCH_AHEAD_TXNS`
    /// ahead while deciding the current one, so that cache misses overlap.
    pub fn certify_batch(
        &mut self,
        requests: &[CertificationRequest],
        verdicts: &mut Vec<Verdict>,
    ) {
        verdicts.reserve(requests.len());
        for request in requests.iter().take(PREFETCH_AHEAD_TXNS) {
            self.prefetch(request);
        }
        for (position, request) in requests.iter().enumerate() {
            if let Some(ahead) = requests.get(position + PREFETCH_AHEAD_TXNS) {
                self.prefetch(ahead);
            }
            verdicts.push(self.certify(request));
        }
    }

    fn prefetch(&self, request: &CertificationRequest) {
        for checked in &request.checked {
            self.index.prefetch(checked.key);
        }
        for &key in &request.written {
            self.index.prefetch(key);
        }
    }

    /// A member's low watermark, at its position in the total order.
    pub fn on_low_watermark(&mut self, member: MemberId, seqno: Seqno) {
        let gc_seqno = self.low_watermarks.on_low_watermark(member, seqno);
        self.apply_gc_seqno(gc_seqno);
    }

    /// The ONLINE set changed, at this position in the total order.
    pub fn set_members(&mut self, online: &[MemberId]) -> Result<(), TooManyMembers> {
        let gc_seqno = self.low_watermarks.set_members(online)?;
        self.apply_gc_seqno(gc_seqno);
        Ok(())
    }

    /// Physically removes dead entries, examining at most `max_slots` slots. Returns how
    /// many it removed. Never changes a verdict; call it between batches.
    pub fn reclaim_step(&mut self, max_slots: usize) -> usize {
        let removed = self.index.reclaim_step(max_slots);
        self.stats
            .set_index_state(self.index.entries_held(), self.index.gc_seqno());
        removed
    }

    /// The gc seqno: index entries at or below it are dead.
    pub fn gc_seqno(&self) -> Seqno {
        self.low_watermarks.gc_seqno()
    }

    /// The highest seqno certified.
    pub fn last_certified(&self) -> Seqno {
        self.verdicts.top()
    }

    /// What the verdict window remembers of `seqno`.
    pub fn remembered(&self, seqno: Seqno) -> Remembered {
        self.verdicts.get(seqno)
    }

    /// The live last writer of `key`, as the certifier sees it.
    pub fn last_writer(&self, key: KeyHash) -> Option<Seqno> {
        self.index.last_writer(key)
    }

    /// The index geometry.
    pub fn index_config(&self) -> IndexConfig {
        self.index.config()
    }

    /// A handle for other threads' lookups (early checks).
    pub fn reader(&self) -> IndexReader {
        self.index.reader()
    }

    /// The counters, shared with other threads.
    pub fn stats_handle(&self) -> Arc<CertifierStats> {
        Arc::clone(&self.stats)
    }

    /// One reading of the counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    fn apply_gc_seqno(&mut self, gc_seqno: Seqno) {
        if gc_seqno > self.index.gc_seqno() {
            self.index.set_gc_seqno(gc_seqno);
            self.stats
                .set_index_state(self.index.entries_held(), gc_seqno);
        }
    }

    /// Rules 1 to 5 of the module doc; `Ok(depends_on)` is rule 6's commit.
    fn decide(&mut self, request: &CertificationRequest) -> Result<Seqno, AbortReason> {
        if request.checked.len() > REQUEST_KEYS_MAX
            || request.written.len() > REQUEST_KEYS_MAX
            || request.local_deps.len() > LOCAL_DEPS_MAX
        {
            return Err(AbortReason::TooLarge);
        }
        let gc_seqno = self.gc_seqno();
        let oldest = request
            .checked
            .iter()
            .map(|c| c.observed_at)
            .fold(request.snapshot, Seqno::min);
        if oldest < gc_seqno {
            return Err(AbortReason::SnapshotTooOld {
                observed_at: oldest,
                gc_seqno,
            });
        }
        self.check_dependencies(request)?;
        let mut depends_on = gc_seqno;
        // The written keys are located first (no side effect), so that a checked key that
        // is also the written key at the same position (snapshot isolation) is not probed
        // twice, and the commit writes each key without probing again.
        self.located.clear();
        self.new_keys.clear();
        for &key in &request.written {
            let located = self.index.locate(key);
            match located.live {
                Some(writer) => depends_on = depends_on.max(writer),
                None => self.new_keys.push(key.0),
            }
            self.located.push(located);
        }
        let paired = request.checked.len() == request.written.len();
        for (position, checked) in request.checked.iter().enumerate() {
            let live = if paired && checked.key == request.written[position] {
                self.located[position].live
            } else {
                self.index.last_writer(checked.key)
            };
            if let Some(writer) = live {
                depends_on = depends_on.max(writer);
                if writer > checked.observed_at && !request.local_deps.contains(&writer) {
                    return Err(AbortReason::Conflict {
                        key: checked.key,
                        winner_seqno: writer,
                    });
                }
            }
        }
        self.make_room()?;
        Ok(depends_on)
    }

    /// Rule 3: every local dependency committed, and is still remembered.
    fn check_dependencies(&self, request: &CertificationRequest) -> Result<(), AbortReason> {
        for &dependency in &request.local_deps {
            if dependency == Seqno::ZERO || dependency >= request.seqno {
                return Err(AbortReason::DependencyNotCertified { dependency });
            }
            if VerdictWindow::forgotten(request.seqno, dependency) {
                return Err(AbortReason::DependencyForgotten { dependency });
            }
            match self.verdicts.get(dependency) {
                Remembered::Committed => {}
                Remembered::Aborted => return Err(AbortReason::DependencyAborted { dependency }),
                Remembered::Unknown => {
                    return Err(AbortReason::DependencyNotCertified { dependency })
                }
            }
        }
        Ok(())
    }

    /// Rule 5: room in every shard for the distinct new keys in `new_keys`. Shards are
    /// visited in ascending order, so the shard named by an abort is the same everywhere.
    fn make_room(&mut self) -> Result<(), AbortReason> {
        if self.new_keys.is_empty() {
            return Ok(());
        }
        let config = self.index.config();
        self.new_keys.sort_unstable();
        self.new_keys.dedup();
        self.new_per_shard.clear();
        self.new_per_shard.extend(
            self.new_keys
                .iter()
                .map(|&k| (config.shard_of(KeyHash(k)), 1)),
        );
        self.new_per_shard.sort_unstable();
        self.new_per_shard.dedup_by(|later, first| {
            let same = later.0 == first.0;
            if same {
                first.1 += later.1;
            }
            same
        });
        for index in 0..self.new_per_shard.len() {
            let (shard, count) = self.new_per_shard[index];
            if self.index.ensure_room(shard, count).is_err() {
                return Err(AbortReason::IndexFull {
                    shard: shard as u32,
                });
            }
        }
        Ok(())
    }
}

impl IndexReader {
    /// The origin's early check of a transaction about to be proposed: the abort that
    /// certification will certainly return for these checked keys, if one is visible now.
    /// Exact, not a guess: last writers only move forward until gc, and a writer that
    /// dies before certification means the snapshot is too old by then.
    pub fn early_conflict(
        &self,
        checked: &[CheckedKey],
        local_deps: &[Seqno],
    ) -> Option<AbortReason> {
        checked.iter().find_map(|c| {
            let writer = self.last_writer(c.key)?;
            (writer > c.observed_at && !local_deps.contains(&writer)).then_some(
                AbortReason::Conflict {
                    key: c.key,
                    winner_seqno: writer,
                },
            )
        })
    }
}

fn abort_kind(reason: AbortReason) -> AbortKind {
    match reason {
        AbortReason::Conflict { .. } => AbortKind::Conflict,
        AbortReason::DependencyAborted { .. }
        | AbortReason::DependencyNotCertified { .. }
        | AbortReason::DependencyForgotten { .. } => AbortKind::Dependency,
        AbortReason::SnapshotTooOld { .. } => AbortKind::SnapshotTooOld,
        AbortReason::IndexFull { .. } | AbortReason::TooLarge => AbortKind::Capacity,
        AbortReason::NotWritable => AbortKind::NotWritable,
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

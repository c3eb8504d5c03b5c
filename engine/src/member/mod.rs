//! The embedding API: one member of a group as a library (DESIGN.md sections 3, 5, 6).
//!
//! A [`Member`] owns the group core (`group`), the replica (certifier) that consumes its
//! deliveries, the parallel appliers and the store, the member's local transactions
//! (numbering and overlay), a background thread that reports the low watermark and
//! reclaims old versions, and an acker thread that acknowledges AFTER transactions.
//! Transactions come in two styles:
//!
//! - interactive: [`Member::begin`] takes snapshot = watermark (at EVENTUAL: it does not
//!   wait for a consistency level); `get`, `put`, `delete`;
//!   `commit` runs the exact early conflict check, proposes, waits for the verdict and
//!   until the local watermark passes its seqno, and returns the seqno or a typed error;
//! - command-style: [`Member::execute`] runs a closure at commit time against the latest
//!   local state (the store under the overlay of this member's in-flight writes), so
//!   local conflicts chain instead of aborting, and retries a conflicted run up to
//!   `autocommit_retries` times.
//!
//! ```text
//!  session ─execute/commit─► LocalTxns (lock) ─► encode ─► GroupHandle::submit ─► group core
//!     ▲                                                                              │ deliver
//!     │ verdict slot, then watermark                                                 ▼
//!     └──────────── VerdictSlots ◄── EngineSink: Replica::on_delivered ─► Appliers ─► Store
//! ```
//!
//! Before a transaction runs it waits for what its consistency level asks (see
//! `roles.rs` here and `crate::consistency`); a write on a member that may not write is
//! refused with `TxnError::ReadOnly` naming the primary, and certification refuses it
//! anyway if the roles changed before its seqno.
//!
//! Outcomes are exact: committed (with its seqno), aborted (never applied), or
//! "outcome unknown" when the member lost the group before it learned the verdict.
//! Read-only transactions never touch the group. This module must never block the group
//! core beyond the appliers' bounded backpressure.

mod after;
mod error;
mod flow;
mod pending;
mod roles;
mod sink;
mod stats;
mod transaction;

pub use error::{MemberError, TxnError};
pub use roles::RoleOpError;
pub use stats::MemberStats;
pub use transaction::Transaction;

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tutti_net::gcs::MemberId;
use tutti_storage::store::{OpenSnapshots, ReclaimCursor, Store};
use tutti_storage::Seqno;

use crate::applier::{ApplierOptions, Appliers, Watermark};
use crate::certifier::{CertifierStats, IndexConfig, IndexReader, Isolation, KeyHash};
use crate::consistency::Consistency;
use crate::flow_control::{FlowControl, FlowOptions};
use crate::group::{self, GroupHandle, GroupOptions};
use crate::local::{CommandTxn, LocalTxns};
use crate::replica::Replica;
use crate::roles::Version;
use crate::txn::{encode_message, EngineMessage, TxnMessage};
use pending::{AfterSlots, Proposed, VerdictSlots};
use sink::EngineSink;

/// Default `autocommit_retries` (Galera's `wsrep_retry_autocommit` default is 1; a hot
/// key between members needs a few more).
pub const AUTOCOMMIT_RETRIES_DEFAULT: u32 = 3;
/// Default `transaction_size_limit`, bytes of keys and values (GR's default, 150 MB, is
/// above the largest proposal the group orders; this is the group's payload limit minus
/// room for the message's own fields).
pub const TRANSACTION_SIZE_LIMIT_DEFAULT: usize = 1000 * 1024;
/// Default bound on this member's transactions in flight.
pub const IN_FLIGHT_MAX_DEFAULT: usize = 16 * 1024;
/// Default bound on each wait of a commit (delivery, verdict, local apply).
pub const COMMIT_WAIT_DEFAULT: Duration = Duration::from_secs(30);
/// Default period of the low-watermark report and the store's reclaim.
pub const LOW_WATERMARK_INTERVAL_DEFAULT: Duration = Duration::from_secs(1);
/// Keys the store's reclaim examines per step of the background thread.
const RECLAIM_KEYS_PER_STEP: usize = 4096;

/// How a member is set up.
#[derive(Clone, Debug)]
pub struct MemberOptions {
    /// The group core's options.
    pub group: GroupOptions,
    /// The appliers' options.
    pub applier: ApplierOptions,
    /// The certifier's index geometry (the same on every member of the group).
    pub index: IndexConfig,
    /// Runs of a conflicted command-style transaction after the first.
    pub autocommit_retries: u32,
    /// Largest transaction proposed, in bytes of keys and values.
    pub transaction_size_limit: usize,
    /// Most local transactions in flight.
    pub in_flight_max: usize,
    /// Bound on each wait of a commit.
    pub commit_wait: Duration,
    /// Period of the low-watermark report.
    pub low_watermark_interval: Duration,
    /// Command-style transactions chain to local in-flight writers. Switching it off is
    /// for measuring what chaining is worth only: every local conflict then aborts.
    pub chaining: bool,
    /// The mode this member asks for when it is the first of a group (later members
    /// follow the group's mode).
    pub single_primary_mode: bool,
    /// The version this member announces. The build's own; tests override it to
    /// exercise the compatibility rules.
    pub version: Version,
    /// The default consistency level.
    pub consistency: Consistency,
    /// Flow control.
    pub flow: FlowOptions,
}

impl MemberOptions {
    /// Defaults for everything but the group core's options.
    pub fn new(group: GroupOptions) -> MemberOptions {
        MemberOptions {
            group,
            applier: ApplierOptions::default(),
            index: IndexConfig::for_live_entries(1 << 20),
            autocommit_retries: AUTOCOMMIT_RETRIES_DEFAULT,
            transaction_size_limit: TRANSACTION_SIZE_LIMIT_DEFAULT,
            in_flight_max: IN_FLIGHT_MAX_DEFAULT,
            commit_wait: COMMIT_WAIT_DEFAULT,
            low_watermark_interval: LOW_WATERMARK_INTERVAL_DEFAULT,
            chaining: true,
            single_primary_mode: true,
            version: Version::of_build(),
            consistency: Consistency::default(),
            flow: FlowOptions::default(),
        }
    }
}

/// A committed command-style transaction (or a read-only one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed<R> {
    /// What the closure returned in its last run.
    pub result: R,
    /// The commit's seqno; `None` when the transaction wrote nothing.
    pub seqno: Option<Seqno>,
    /// Runs after the first (certification aborts retried).
    pub retries: u32,
}

/// State shared by the member's handle, its sessions and its delivery sink.
pub(crate) struct Inner {
    pub(crate) options: MemberOptions,
    pub(crate) store: Arc<Store>,
    pub(crate) watermark: Arc<Watermark>,
    pub(crate) snapshots: OpenSnapshots,
    /// This member's transactions; the lock also orders proposals.
    pub(crate) local: Mutex<LocalTxns>,
    pub(crate) identity: OnceLock<(MemberId, u64)>,
    pub(crate) verdicts: VerdictSlots,
    pub(crate) index: IndexReader,
    pub(crate) certifier_stats: Arc<CertifierStats>,
    pub(crate) appliers: Arc<Appliers>,
    pub(crate) group: OnceLock<Arc<GroupHandle>>,
    pub(crate) local_proposed: AtomicU64,
    pub(crate) local_rollback: AtomicU64,
    pub(crate) outcome_unknown: AtomicU64,
    pub(crate) stopping: AtomicBool,
    /// The commit and certification latency histograms (see `crate::metrics`).
    pub(crate) metrics: crate::metrics::MemberHistograms,
    /// `autocommit_retries`, settable while the member runs (`CONFIG SET`).
    pub(crate) autocommit_retries: AtomicU32,
    /// The group's roles as the last delivered entry left them.
    pub(crate) roles: roles::SharedRoles,
    /// The default consistency level, settable while the member runs.
    pub(crate) consistency: RwLock<Consistency>,
    /// Flow control: the reports of every member and this member's quota.
    pub(crate) flow: Mutex<FlowControl>,
    /// Flow control's epoch.
    pub(crate) started: Instant,
    /// Consistency AFTER: slots of this member's transactions waiting for every member.
    pub(crate) after_slots: AfterSlots,
    /// Consistency AFTER: what this member still has to acknowledge.
    pub(crate) ack_due: after::AckDue,
}

/// One member of a group, embedded in this process.
pub struct Member {
    inner: Arc<Inner>,
    /// The background (gc, reports, announcements) and acker threads.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Member {
    /// Starts the member: opens its log and store, starts the group core, the appliers
    /// and the background thread. Returns once the group core runs (it may still be
    /// waiting for a seed; see [`GroupHandle::stats`]).
    pub fn start(options: MemberOptions) -> Result<Member, MemberError> {
        let store = Arc::new(Store::new());
        let watermark = Arc::new(Watermark::new());
        let appliers = Arc::new(Appliers::start(
            Arc::clone(&store),
            Arc::clone(&watermark),
            options.applier,
        )?);
        let replica = Replica::new(options.index)?;
        let mut local = LocalTxns::new(MemberId(0), 0, options.in_flight_max);
        local.set_chaining(options.chaining);
        let inner = Arc::new(Inner {
            store,
            watermark,
            snapshots: OpenSnapshots::new(),
            local: Mutex::new(local),
            identity: OnceLock::new(),
            verdicts: VerdictSlots::default(),
            index: replica.index_reader(),
            certifier_stats: replica.stats_handle(),
            appliers,
            group: OnceLock::new(),
            local_proposed: AtomicU64::new(0),
            local_rollback: AtomicU64::new(0),
            outcome_unknown: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            metrics: crate::metrics::MemberHistograms::default(),
            autocommit_retries: AtomicU32::new(options.autocommit_retries),
            roles: roles::SharedRoles::default(),
            consistency: RwLock::new(options.consistency),
            flow: Mutex::new(FlowControl::new(options.flow, Duration::ZERO)),
            started: Instant::now(),
            after_slots: AfterSlots::default(),
            ack_due: after::AckDue::default(),
            options,
        });
        let sink = EngineSink::new(replica, Arc::clone(&inner));
        let group = Arc::new(group::start(inner.options.group.clone(), Box::new(sink))?);
        let identity = (MemberId(group.member_id()), group.incarnation());
        {
            // Nothing was proposed yet: the numbering starts for this incarnation.
            let mut local = inner.local.lock();
            *local = LocalTxns::new(identity.0, identity.1, inner.options.in_flight_max);
            local.set_chaining(inner.options.chaining);
        }
        let _ = inner.identity.set(identity);
        let _ = inner.group.set(group);
        let member = Member {
            inner,
            threads: Mutex::new(Vec::new()),
        };
        member.spawn("tutti-gc", Inner::run_background)?;
        member.spawn("tutti-acker", Inner::run_acker)?;
        Ok(member)
    }

    fn spawn(&self, name: &'static str, run: fn(&Inner)) -> Result<(), MemberError> {
        let inner = Arc::clone(&self.inner);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(&inner))
            .map_err(|source| MemberError::Thread { name, source })?;
        self.threads.lock().push(thread);
        Ok(())
    }

    /// The group core's handle (tables, leave, stats, raw proposals).
    pub fn group(&self) -> &Arc<GroupHandle> {
        self.inner.group()
    }

    /// The store (read at [`Member::watermark`] or below).
    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// The highest seqno such that every seqno at or below it is applied here.
    pub fn watermark(&self) -> Seqno {
        self.inner.watermark.get()
    }

    /// The watermark, to wait on.
    pub fn watermark_handle(&self) -> &Arc<Watermark> {
        &self.inner.watermark
    }

    /// Starts an interactive transaction at snapshot = watermark, with `isolation`. On a
    /// member that has just started it first waits (bounded) until it knows the group's
    /// roles.
    pub fn begin(&self, isolation: Isolation) -> Transaction {
        Transaction::begin(Arc::clone(&self.inner), isolation)
    }

    /// Runs a command-style transaction (asynchronously, on a monoio runtime with
    /// timers): `body` runs at commit time against the latest local state, and again
    /// after a retryable abort, at most `autocommit_retries` more times.
    pub async fn execute<R>(
        &self,
        body: impl FnMut(&mut CommandTxn<'_>) -> R,
    ) -> Result<Executed<R>, TxnError> {
        self.execute_retrying(body, |_| true).await
    }

    /// [`Member::execute`], retrying a retryable abort only when `retry` agrees: a
    /// `WATCH`ed key that conflicts must reach the client instead of being run again.
    pub async fn execute_retrying<R>(
        &self,
        body: impl FnMut(&mut CommandTxn<'_>) -> R,
        retry: impl Fn(&TxnError) -> bool,
    ) -> Result<Executed<R>, TxnError> {
        self.execute_at(self.consistency(), body, retry).await
    }

    /// [`Member::execute_retrying`] at consistency level `level`: its waits come before
    /// the first run.
    pub async fn execute_at<R>(
        &self,
        level: Consistency,
        mut body: impl FnMut(&mut CommandTxn<'_>) -> R,
        retry: impl Fn(&TxnError) -> bool,
    ) -> Result<Executed<R>, TxnError> {
        self.inner.wait_before(level).await?;
        self.inner.flow_gate().await;
        let mut retries = 0;
        loop {
            let (result, proposed) = self.inner.run_command(&mut body, level)?;
            let outcome = match proposed {
                Some(proposed) => proposed.outcome(&self.inner).await.map(Some),
                None => Ok(None),
            };
            if let ControlFlow::Break(done) = self.settle(result, outcome, &mut retries, &retry) {
                return done;
            }
        }
    }

    /// [`Member::execute`], blocking the calling thread (not a monoio thread).
    pub fn execute_blocking<R>(
        &self,
        mut body: impl FnMut(&mut CommandTxn<'_>) -> R,
    ) -> Result<Executed<R>, TxnError> {
        let level = self.consistency();
        self.inner.wait_before_blocking(level)?;
        self.inner.flow_gate_blocking();
        let mut retries = 0;
        loop {
            let (result, proposed) = self.inner.run_command(&mut body, level)?;
            let outcome = proposed.map_or(Ok(None), |proposed| {
                proposed.outcome_blocking(&self.inner).map(Some)
            });
            if let ControlFlow::Break(done) = self.settle(result, outcome, &mut retries, &|_| true)
            {
                return done;
            }
        }
    }

    /// What follows one run of a command-style transaction: done (committed, read-only,
    /// or failed for good), or run again after a retryable abort.
    fn settle<R>(
        &self,
        result: R,
        outcome: Result<Option<Seqno>, TxnError>,
        retries: &mut u32,
        retry: &dyn Fn(&TxnError) -> bool,
    ) -> ControlFlow<Result<Executed<R>, TxnError>> {
        match outcome {
            Ok(seqno) => ControlFlow::Break(Ok(Executed {
                result,
                seqno,
                retries: *retries,
            })),
            Err(error)
                if error.is_retryable()
                    && retry(&error)
                    && *retries < self.autocommit_retries() =>
            {
                *retries += 1;
                ControlFlow::Continue(())
            }
            Err(error) => ControlFlow::Break(Err(error)),
        }
    }

    /// Runs of a conflicted command-style transaction after the first.
    pub fn autocommit_retries(&self) -> u32 {
        self.inner.autocommit_retries.load(Ordering::Relaxed)
    }

    /// Changes `autocommit_retries` while the member runs; transactions that start
    /// their next run afterwards use the new value.
    pub fn set_autocommit_retries(&self, retries: u32) {
        self.inner
            .autocommit_retries
            .store(retries, Ordering::Relaxed);
    }

    /// Whether `key` may have been written after `observed_at`: its last committed
    /// writer (as certified here) is later, or the certifier no longer remembers writers
    /// that old (`observed_at` is below the gc seqno). Exact when it says no for a seqno
    /// at or below what certification will see; used for `WATCH`'s early check.
    pub fn written_after(&self, key: &[u8], observed_at: Seqno) -> bool {
        self.inner.index.gc_seqno() > observed_at
            || self
                .inner
                .index
                .last_writer(KeyHash::of(key))
                .is_some_and(|writer| writer > observed_at)
    }

    /// GR's member stats for this member.
    pub fn stats(&self) -> MemberStats {
        self.inner.stats()
    }

    /// Leaves the group (bounded by `wait`), stops the background thread, the group core
    /// and the appliers.
    pub fn shutdown(&self, leave_wait: Option<Duration>) -> Result<(), MemberError> {
        if let Some(wait) = leave_wait {
            self.group().leave(wait);
        }
        self.inner.stopping.store(true, Ordering::Release);
        for thread in self.threads.lock().drain(..) {
            let _ = thread.join();
        }
        self.group().shutdown()?;
        Ok(())
    }
}

impl Inner {
    pub(crate) fn group(&self) -> &Arc<GroupHandle> {
        self.group.get().expect("the group core is set at start")
    }

    /// Runs one command-style attempt and proposes what it wrote.
    fn run_command<R>(
        self: &Arc<Self>,
        body: &mut impl FnMut(&mut CommandTxn<'_>) -> R,
        level: Consistency,
    ) -> Result<(R, Option<Proposed>), TxnError> {
        let mut local = self.local.lock();
        let watermark = self.watermark.get();
        let (result, txn) = local.execute(&self.store, watermark, &mut *body)?;
        let Some(txn) = txn else {
            return Ok((result, None));
        };
        let hold = self.snapshots.open(watermark).ok();
        let proposed = self.propose(&mut local, txn, hold, level)?;
        Ok((result, Some(proposed)))
    }

    /// Checks the size, registers the verdict slot (and the AFTER slot at a level that
    /// waits after) and hands the transaction to the group core, all under the local
    /// lock (so proposals keep their numbering order).
    pub(crate) fn propose(
        &self,
        local: &mut LocalTxns,
        mut txn: TxnMessage,
        hold: Option<tutti_storage::store::SnapshotHold>,
        level: Consistency,
    ) -> Result<Proposed, TxnError> {
        let number = txn.id.number;
        if let Err(refused) = self.admit_write() {
            local.withdraw(number);
            return Err(refused);
        }
        let bytes = txn.writes_bytes();
        if bytes > self.options.transaction_size_limit {
            local.withdraw(number);
            return Err(TxnError::TooLarge {
                bytes,
                limit: self.options.transaction_size_limit,
            });
        }
        txn.after = level.waits_after();
        let mut payload = Vec::with_capacity(64 + bytes);
        encode_message(&EngineMessage::Txn(txn), &mut payload);
        let verdict = self.verdicts.register(number);
        let after = level
            .waits_after()
            .then(|| self.after_slots.register(number));
        match self.group().submit(payload.into()) {
            Ok(ticket) => {
                self.local_proposed.fetch_add(1, Ordering::Relaxed);
                self.flow.lock().take();
                Ok(Proposed {
                    number,
                    ticket,
                    verdict,
                    hold,
                    after,
                })
            }
            Err(failure) => {
                self.verdicts.forget(number);
                self.after_slots.forget(number);
                local.withdraw(number);
                Err(TxnError::NotProposed(failure))
            }
        }
    }

    /// The outcome of a local transaction is unknown: it leaves the overlay.
    pub(crate) fn unknown(&self, number: u64, why: &str) -> TxnError {
        self.verdicts.forget(number);
        self.local.lock().withdraw(number);
        self.outcome_unknown.fetch_add(1, Ordering::Relaxed);
        TxnError::OutcomeUnknown(why.to_owned())
    }

    /// Reports the low watermark through the total order and reclaims old versions,
    /// every `low_watermark_interval`, until the member stops.
    fn run_background(&self) {
        let mut cursor = ReclaimCursor::new();
        let mut last_reported = Seqno::ZERO;
        let mut checked_at_report = 0;
        let tick = Duration::from_millis(20).min(self.options.low_watermark_interval);
        let mut since_report = Duration::ZERO;
        let mut announced = None;
        let mut refused_version = false;
        let mut flow_report = flow::LastReport::default();
        while !self.stopping.load(Ordering::Acquire) {
            let slept = Instant::now();
            self.roles.wait_change(tick);
            since_report += slept.elapsed();
            self.announce_if_needed(&mut announced);
            self.flow_tick(&mut flow_report);
            if !refused_version && self.version_refused() {
                refused_version = true;
                tracing::error!(
                    version = %self.options.version,
                    lowest = ?self.roles.get().lowest_version().map(|v| v.to_string()),
                    "this member's version is below the group's lowest: it may not take part \
                     and leaves the group (upgrade it, or start the group from the older members)"
                );
                self.group().leave(Duration::from_secs(5));
            }
            let watermark = self.watermark.get();
            let horizon = self.snapshots.horizon(watermark);
            self.store
                .reclaim_step(horizon, &mut cursor, RECLAIM_KEYS_PER_STEP);
            if cursor.is_finished() {
                cursor = ReclaimCursor::new();
            }
            // A report is itself an entry that moves the watermark: report only when
            // transactions were certified since the last one, so an idle group goes quiet.
            let checked = self.certifier_stats.snapshot().transactions_checked;
            if since_report < self.options.low_watermark_interval
                || horizon <= last_reported
                || checked == checked_at_report
            {
                continue;
            }
            since_report = Duration::ZERO;
            let Some(&(member, _)) = self.identity.get() else {
                continue;
            };
            let mut payload = Vec::new();
            encode_message(
                &EngineMessage::LowWatermark {
                    member,
                    seqno: horizon,
                },
                &mut payload,
            );
            // Fire and forget: a lost report is replaced by the next one.
            if self.group().submit(payload.into()).is_ok() {
                last_reported = horizon;
                checked_at_report = checked;
            }
        }
    }
}

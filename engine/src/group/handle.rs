//! The group core as other threads see it: a `Send + Sync` [`GroupHandle`] to propose,
//! read the tables, leave and shut down, and the state it shares with the core thread.
//!
//! Requests cross to the group core through one bounded queue; a proposal's answer comes
//! back on its own one-slot channel when the entry is delivered here. Nothing here
//! blocks the group core: a full queue fails the request at once. This module must
//! never touch the gcs itself; only the core thread does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tutti_net::gcs::{MemberState, Payload};
use tutti_net::transport::{RuntimeError, TransportHandle};

use super::constants::{PROPOSE_QUEUE_MAX, PROPOSE_WAIT_MAX, SHUTDOWN_WAIT_MAX};
use super::delivery::DigestHistory;
use super::error::{GroupError, ProposeFailure};
use super::tables::{connection_rows, ConnectionRow, GroupStats, MemberRow};
use crate::metrics::{HistogramSnapshot, LatencyHistogram};

/// The answer to one proposal: its seqno once delivered here. It records the proposal's
/// ordering latency (from [`GroupHandle::submit`] to the delivery here) as it answers.
pub(crate) struct ProposeReply {
    /// Where the seqno goes.
    sender: flume::Sender<Result<u64, ProposeFailure>>,
    /// When the proposal was submitted.
    submitted: Instant,
    /// The ordering histogram of this member.
    ordering: Arc<LatencyHistogram>,
}

impl ProposeReply {
    /// Answers the proposer; a delivery is recorded as one ordering sample.
    pub(crate) fn try_send(
        &self,
        outcome: Result<u64, ProposeFailure>,
    ) -> Result<(), flume::TrySendError<Result<u64, ProposeFailure>>> {
        if outcome.is_ok() {
            self.ordering.record_since(self.submitted);
        }
        self.sender.try_send(outcome)
    }
}

/// A request from another thread to the group core.
pub(crate) enum Request {
    /// Order `payload`; answer on `reply` when it is delivered here.
    Propose {
        /// The bytes.
        payload: Payload,
        /// Where the seqno goes.
        reply: ProposeReply,
    },
    /// Leave the group; answer with the state reached (OFFLINE once the removal is
    /// committed).
    Leave {
        /// Where the state goes.
        reply: flume::Sender<MemberState>,
    },
    /// Stop the group core (after a leave, or abruptly).
    Shutdown,
}

/// What the core thread publishes for other threads.
#[derive(Default)]
pub(crate) struct Shared {
    /// The members table.
    pub(crate) members: RwLock<Vec<MemberRow>>,
    /// Counters and position.
    pub(crate) stats: RwLock<GroupStats>,
    /// Digests of recent delivered prefixes.
    pub(crate) digests: Mutex<DigestHistory>,
    /// The transport, for the connection table.
    pub(crate) transport: OnceLock<TransportHandle>,
    /// Where the peer listener is bound.
    pub(crate) peer_addr: OnceLock<SocketAddr>,
    /// Local proposals from submission to delivery here (the ordering latency).
    pub(crate) ordering: Arc<LatencyHistogram>,
    /// Views installed since start (counted by the group core as it installs them).
    pub(crate) view_changes: AtomicU64,
}

/// The outcome of the group core thread.
pub(crate) type CoreThread = JoinHandle<Result<Result<(), GroupError>, RuntimeError>>;

/// One proposal handed to the group core, waiting for its delivery.
pub struct ProposalTicket {
    answer: flume::Receiver<Result<u64, ProposeFailure>>,
    submitted: Instant,
}

impl ProposalTicket {
    /// When the proposal was handed to the group core (where latencies start).
    pub fn submitted_at(&self) -> Instant {
        self.submitted
    }

    /// Waits (asynchronously) for the delivery; returns the seqno.
    pub async fn delivered(self) -> Result<u64, ProposeFailure> {
        self.answer
            .recv_async()
            .await
            .map_err(|_| ProposeFailure::Stopped)?
    }

    /// Blocks at most `wait` for the delivery; returns the seqno.
    pub fn wait(self, wait: Duration) -> Result<u64, ProposeFailure> {
        match self.answer.recv_timeout(wait) {
            Ok(outcome) => outcome,
            Err(flume::RecvTimeoutError::Timeout) => Err(ProposeFailure::Timeout(wait)),
            Err(flume::RecvTimeoutError::Disconnected) => Err(ProposeFailure::Stopped),
        }
    }
}

/// A handle on a running group core, usable from any thread.
pub struct GroupHandle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) requests: flume::Sender<Request>,
    pub(crate) thread: Mutex<Option<CoreThread>>,
    pub(crate) member: u128,
    pub(crate) incarnation: u64,
}

impl GroupHandle {
    /// This member's id.
    pub fn member_id(&self) -> u128 {
        self.member
    }

    /// This member's incarnation for this run.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Where the peer listener is bound.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.shared.peer_addr.get().copied()
    }

    /// Hands a proposal to the group core without waiting; the ticket tells when it is
    /// delivered here. Many tickets may be outstanding (a pipelining client).
    pub fn submit(&self, payload: Payload) -> Result<ProposalTicket, ProposeFailure> {
        let (sender, answer) = flume::bounded(1);
        let submitted = Instant::now();
        let reply = ProposeReply {
            sender,
            submitted,
            ordering: Arc::clone(&self.shared.ordering),
        };
        self.requests
            .try_send(Request::Propose { payload, reply })
            .map_err(|error| match error {
                flume::TrySendError::Full(_) => ProposeFailure::QueueFull(PROPOSE_QUEUE_MAX),
                flume::TrySendError::Disconnected(_) => ProposeFailure::Stopped,
            })?;
        Ok(ProposalTicket { answer, submitted })
    }

    /// Hands a proposal to the group core and waits (asynchronously) until it is
    /// delivered here; returns its seqno. Callers bound the wait themselves.
    pub async fn propose_async(&self, payload: Payload) -> Result<u64, ProposeFailure> {
        self.submit(payload)?.delivered().await
    }

    /// Hands a proposal to the group core and blocks until it is delivered here (at most
    /// [`PROPOSE_WAIT_MAX`]); returns its seqno. Not for a monoio thread: use
    /// [`propose_async`](Self::propose_async) there.
    pub fn propose(&self, payload: &[u8]) -> Result<u64, ProposeFailure> {
        self.submit(Arc::from(payload))?.wait(PROPOSE_WAIT_MAX)
    }

    /// The members table.
    pub fn members(&self) -> Vec<MemberRow> {
        self.shared.members.read().clone()
    }

    /// The connection table (one row per peer, then refused connections).
    pub fn connections(&self) -> Vec<ConnectionRow> {
        self.shared
            .transport
            .get()
            .map(|transport| connection_rows(&transport.snapshot()))
            .unwrap_or_default()
    }

    /// Counters and position of the group core.
    pub fn stats(&self) -> GroupStats {
        let mut stats = self.shared.stats.read().clone();
        stats.view_changes = self.shared.view_changes.load(Ordering::Relaxed);
        stats
    }

    /// Local proposals from [`submit`](Self::submit) to their delivery here.
    pub fn ordering_latency(&self) -> HistogramSnapshot {
        self.shared.ordering.snapshot()
    }

    /// The last delivered seqno and the digest of the delivered prefix up to it.
    pub fn last_digest(&self) -> (u64, u64) {
        self.shared.digests.lock().last()
    }

    /// The digest of the delivered prefix up to `seqno`, if delivered and still kept.
    pub fn digest_at(&self, seqno: u64) -> Option<u64> {
        self.shared.digests.lock().at(seqno)
    }

    /// Asks the group to remove this member and waits (at most `wait`) until the
    /// removal is committed. Returns the state reached; not OFFLINE means the wait
    /// ended first (for example the last member of a group cannot leave it).
    pub fn leave(&self, wait: Duration) -> MemberState {
        let (reply, answer) = flume::bounded(1);
        if self
            .requests
            .send_timeout(Request::Leave { reply }, wait)
            .is_err()
        {
            return self.own_state();
        }
        answer
            .recv_timeout(wait)
            .unwrap_or_else(|_| self.own_state())
    }

    fn own_state(&self) -> MemberState {
        self.shared
            .stats
            .read()
            .state
            .unwrap_or(MemberState::Offline)
    }

    /// Whether the group core thread still runs.
    pub fn is_running(&self) -> bool {
        self.thread
            .lock()
            .as_ref()
            .is_some_and(|thread| !thread.is_finished())
    }

    /// Stops the group core (without leaving: the others see this member go silent) and
    /// waits for its thread, at most [`SHUTDOWN_WAIT_MAX`]. Returns the error the core
    /// stopped with, if any.
    pub fn shutdown(&self) -> Result<(), GroupError> {
        let _ = self
            .requests
            .send_timeout(Request::Shutdown, SHUTDOWN_WAIT_MAX);
        let Some(thread) = self.thread.lock().take() else {
            return Ok(());
        };
        let deadline = std::time::Instant::now() + SHUTDOWN_WAIT_MAX;
        while !thread.is_finished() {
            if std::time::Instant::now() >= deadline {
                return Err(GroupError::Thread(format!(
                    "the group core did not stop within {SHUTDOWN_WAIT_MAX:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        match thread.join() {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => Err(GroupError::Runtime(error)),
            Err(_) => Err(GroupError::Thread(
                "the group core thread panicked".to_owned(),
            )),
        }
    }

    /// If the group core thread has ended, the error it ended with.
    pub fn failure(&self) -> Option<String> {
        let mut guard = self.thread.lock();
        if !guard.as_ref().is_some_and(JoinHandle::is_finished) {
            return None;
        }
        let thread = guard.take()?;
        match thread.join() {
            Ok(Ok(Ok(()))) => None,
            Ok(Ok(Err(error))) => Some(error.to_string()),
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some("the group core thread panicked".to_owned()),
        }
    }
}

//! The group core loop: one monoio task that owns the gcs core, the peer transport, the
//! log and the directory, on the group core thread.
//!
//! ```text
//!  transport.recv ─┐                          ┌─▶ Send        -> encode_message -> transport
//!  requests ───────┼─▶ select ─▶ drain ready ─┤   PersistEntries -> staged; one append+sync
//!  timer ──────────┘   inputs (bounded)       │   per turn, then on_persisted
//!                        │                    ├─▶ TruncateLog / PersistMeta -> durable now
//!                        ▼                    ├─▶ Deliver    -> digest, proposer, sink
//!                 gcs.on_message / propose /  ├─▶ SetTimer   -> the one timer
//!                 on_timeout                  └─▶ ViewInstalled / MemberStateChanged -> tables
//! ```
//!
//! A member that has no group yet (a joiner, or a restarted joiner that never got in)
//! runs the same loop without a gcs until a seed answers; it never creates a group of
//! its own. The loop reads the monotonic clock; the gcs never does. This module must
//! never block on another thread, and nothing a peer sends can make it panic: a frame
//! that does not decode is logged and dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tutti_net::gcs::{Gcs, GcsConfig, MemberId, MemberState, RestoredState, Status, Time};
use tutti_net::transport::{Inbound, InboundFrame, PeerId, Transport};
use tutti_net::wire::{decode_message, encode_message, Frame, FrameOrigin};

use super::constants::{
    DIRECTORY_KIND, HOUSEKEEPING_INTERVAL, INBOUND_PER_TURN_MAX, LEAVE_WAITERS_MAX,
    PROPOSALS_PER_TURN_MAX, SEED_WAIT_LOG_INTERVAL, TIME_EPOCH_OFFSET,
};
use super::delivery::DeliverySink;
use super::directory::{decode_directory, Directory};
use super::error::{GroupError, ProposeFailure};
use super::handle::{ProposeReply, Request, Shared};
use super::identity::format_uuid;
use super::persist::Persistence;

/// Reads the monotonic clock as the core's `Time`.
pub(crate) struct Clock {
    started: Instant,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            started: Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Time {
        let micros = u64::try_from((TIME_EPOCH_OFFSET + self.started.elapsed()).as_micros())
            .unwrap_or(u64::MAX);
        Time(micros)
    }

    fn until(&self, at: Time) -> Duration {
        at.since(self.now())
    }
}

/// How the gcs is built once a seed answers.
pub(crate) enum PendingStart {
    /// A first start: ask the seeds to let this member in.
    Join,
    /// A restart whose log holds no configuration and that knows no member to ask.
    Restart(RestoredState),
}

/// Everything the group core loop owns.
pub(crate) struct Shell {
    pub(crate) config: GcsConfig,
    pub(crate) me: u128,
    pub(crate) gcs: Option<Gcs>,
    pub(crate) pending_start: Option<PendingStart>,
    pub(crate) transport: Transport,
    pub(crate) origin: FrameOrigin,
    pub(crate) store: Persistence,
    pub(crate) directory: Directory,
    pub(crate) clock: Clock,
    pub(crate) shared: Arc<Shared>,
    pub(crate) sink: Box<dyn DeliverySink>,
    pub(crate) requests: flume::Receiver<Request>,
    /// Own proposals waiting for delivery, by counter.
    pub(crate) waiting: HashMap<u64, ProposeReply>,
    pub(crate) leave_waiters: Vec<flume::Sender<MemberState>>,
    pub(crate) timer_at: Option<Time>,
    /// Other members' states as the gcs reported them.
    pub(crate) states: BTreeMap<u128, MemberState>,
    pub(crate) scratch: Vec<u8>,
    pub(crate) frame_buffer: Vec<u8>,
    pub(crate) delivered_count: u64,
    pub(crate) log_appends: u64,
    pub(crate) frames_undecodable: u64,
    pub(crate) tables_dirty: bool,
    pub(crate) stop: bool,
    pub(crate) seed_wait_logged: Option<Instant>,
}

/// What woke the loop.
enum Wake {
    Inbound(Inbound),
    Request(Option<Request>),
    Tick,
}

impl Shell {
    /// Runs until shut down or until storage fails.
    pub(crate) async fn run(mut self) -> Result<(), GroupError> {
        let outcome = self.run_loop().await;
        if let Err(error) = &outcome {
            tracing::error!(member = %format_uuid(self.me), %error, "the group core stops on an error");
            self.shared.stats.write().state = Some(MemberState::Error);
            if let Some(row) = self
                .shared
                .members
                .write()
                .iter_mut()
                .find(|row| row.member_id == format_uuid(self.me))
            {
                row.member_state = MemberState::Error;
            }
        }
        // Dropping the waiting replies tells their proposers the outcome is unknown.
        self.waiting.clear();
        self.leave_waiters.clear();
        let transport = self.transport;
        transport.shutdown().await;
        outcome
    }

    async fn run_loop(&mut self) -> Result<(), GroupError> {
        self.broadcast_directory();
        while !self.stop {
            let wait = self.timer_at.map_or(HOUSEKEEPING_INTERVAL, |at| {
                self.clock.until(at).min(HOUSEKEEPING_INTERVAL)
            });
            let wake = monoio::select! {
                inbound = self.transport.recv() => Wake::Inbound(inbound),
                request = self.requests.recv_async() => Wake::Request(request.ok()),
                () = monoio::time::sleep(wait) => Wake::Tick,
            };
            match wake {
                Wake::Inbound(inbound) => self.on_inbound(inbound)?,
                Wake::Request(Some(request)) => self.on_request(request),
                Wake::Request(None) => self.stop = true,
                Wake::Tick => {}
            }
            self.drain_ready()?;
            self.on_clock();
            self.execute_commands()?;
            if self.follow_wanted_sequencer() {
                self.execute_commands()?;
            }
            self.store.sync_if_due()?;
            self.after_turn();
        }
        Ok(())
    }

    /// Hands the sequencer role to the member the sink wants (the primary) when this
    /// member holds it (`Gcs::hand_over` decides); returns whether a view change started.
    fn follow_wanted_sequencer(&mut self) -> bool {
        let (Some(wanted), Some(gcs)) = (self.sink.wanted_sequencer(), self.gcs.as_mut()) else {
            return false;
        };
        if !gcs.hand_over(self.clock.now(), MemberId(wanted)) {
            return false;
        }
        tracing::info!(member = %format_uuid(self.me), to = %format_uuid(wanted),
            "handing the sequencer role to the primary (a voluntary view change)");
        true
    }

    /// Takes what else is ready without waiting, bounded per turn.
    fn drain_ready(&mut self) -> Result<(), GroupError> {
        for _ in 0..INBOUND_PER_TURN_MAX {
            let Some(inbound) = self.transport.try_recv() else {
                break;
            };
            self.on_inbound(inbound)?;
        }
        for _ in 0..PROPOSALS_PER_TURN_MAX {
            let Ok(request) = self.requests.try_recv() else {
                break;
            };
            self.on_request(request);
        }
        Ok(())
    }

    fn on_clock(&mut self) {
        let now = self.clock.now();
        if let (Some(at), Some(gcs)) = (self.timer_at, self.gcs.as_mut()) {
            if at <= now {
                self.timer_at = None;
                gcs.on_timeout(now);
            }
        }
    }

    fn on_inbound(&mut self, inbound: Inbound) -> Result<(), GroupError> {
        match inbound {
            Inbound::Frame(frame) => self.on_frame(&frame)?,
            Inbound::PeerUp {
                peer,
                incarnation,
                listen_addr,
            } => {
                tracing::info!(member = %format_uuid(self.me), peer = %format_uuid(peer.0), incarnation, %listen_addr, "peer up");
                if let Err(error) = self.transport.add_peer(peer, listen_addr) {
                    tracing::warn!(peer = %format_uuid(peer.0), %error, "cannot keep the peer in the transport");
                }
                self.send_directory(peer);
                self.start_if_pending(peer);
            }
            Inbound::PeerDown {
                peer,
                incarnation,
                error,
            } => {
                tracing::info!(member = %format_uuid(self.me), peer = %format_uuid(peer.0), incarnation, error = ?error, "peer down");
            }
        }
        Ok(())
    }

    fn on_frame(&mut self, frame: &InboundFrame) -> Result<(), GroupError> {
        if frame.header.kind == DIRECTORY_KIND {
            match decode_directory(frame.body()) {
                Ok(records) => self.on_directory(records)?,
                Err(error) => self.undecodable(frame, &error.to_string()),
            }
            return Ok(());
        }
        let view = Frame {
            header: frame.header,
            body: frame.body(),
        };
        match decode_message(&view) {
            Ok(message) => {
                if let Some(gcs) = self.gcs.as_mut() {
                    gcs.on_message(self.clock.now(), MemberId(frame.peer.0), message);
                }
            }
            Err(error) => self.undecodable(frame, &error.to_string()),
        }
        Ok(())
    }

    fn undecodable(&mut self, frame: &InboundFrame, reason: &str) {
        self.frames_undecodable += 1;
        tracing::error!(member = %format_uuid(self.me), peer = %format_uuid(frame.peer.0), kind = frame.header.kind,
            "dropped a frame that does not decode: {reason}");
    }

    fn on_directory(
        &mut self,
        records: Vec<super::directory::MemberAddress>,
    ) -> Result<(), GroupError> {
        let changed = self.directory.merge(self.me, records);
        if changed.is_empty() {
            return Ok(());
        }
        for record in &changed {
            tracing::info!(member = %format_uuid(self.me), peer = %format_uuid(record.member),
                peer_addr = %record.peer_addr, client_addr = %record.client_addr, "learned a member's addresses");
            if let Err(error) = self
                .transport
                .add_peer(PeerId(record.member), record.peer_addr)
            {
                tracing::warn!(peer = %format_uuid(record.member), %error, "cannot add the member as a peer");
            }
        }
        self.directory.save()?;
        self.broadcast_directory();
        self.tables_dirty = true;
        Ok(())
    }

    fn send_directory(&mut self, peer: PeerId) {
        self.frame_buffer.clear();
        if self
            .directory
            .encode_frame(&mut self.frame_buffer, self.origin)
            .is_ok()
        {
            self.transport.send(peer, &self.frame_buffer);
        }
    }

    fn broadcast_directory(&mut self) {
        self.frame_buffer.clear();
        if self
            .directory
            .encode_frame(&mut self.frame_buffer, self.origin)
            .is_ok()
        {
            self.transport.broadcast(&self.frame_buffer);
        }
    }

    /// A seed answered: build the gcs this member was waiting to build.
    fn start_if_pending(&mut self, seed: PeerId) {
        let now = self.clock.now();
        let gcs = match self.pending_start.take() {
            None => return,
            Some(PendingStart::Join) => {
                tracing::info!(member = %format_uuid(self.me), seed = %format_uuid(seed.0), "a seed answered; asking to join");
                Gcs::join(self.config.clone(), vec![MemberId(seed.0)], now)
            }
            Some(PendingStart::Restart(mut restored)) => {
                tracing::info!(member = %format_uuid(self.me), seed = %format_uuid(seed.0), "a seed answered; asking to rejoin");
                restored.seeds = vec![MemberId(seed.0)];
                Gcs::restart(self.config.clone(), restored, now)
            }
        };
        self.gcs = Some(gcs);
        self.tables_dirty = true;
    }

    fn on_request(&mut self, request: Request) {
        match request {
            Request::Propose { payload, reply } => self.on_propose(payload, reply),
            Request::Leave { reply } => match self.gcs.as_mut() {
                Some(gcs) if gcs.members() == [MemberId(self.me)] => {
                    // The last member of a group cannot be removed from it: it stops
                    // as it is, and the group resumes when it restarts.
                    tracing::info!(member = %format_uuid(self.me), "the last member of the group stops without leaving");
                    let _ = reply.try_send(gcs.own_state());
                }
                Some(gcs)
                    if gcs.status() != Status::Stopped
                        && self.leave_waiters.len() < LEAVE_WAITERS_MAX =>
                {
                    tracing::info!(member = %format_uuid(self.me), "leaving the group");
                    gcs.leave(self.clock.now());
                    self.leave_waiters.push(reply);
                }
                Some(gcs) => {
                    let _ = reply.try_send(gcs.own_state());
                }
                None => {
                    self.pending_start = None;
                    let _ = reply.try_send(MemberState::Offline);
                }
            },
            Request::Shutdown => self.stop = true,
        }
    }

    fn on_propose(&mut self, payload: tutti_net::gcs::Payload, reply: ProposeReply) {
        let Some(gcs) = self.gcs.as_mut() else {
            let _ = reply.try_send(Err(ProposeFailure::NotInGroup(MemberState::Offline)));
            return;
        };
        match gcs.propose(self.clock.now(), payload) {
            Ok(id) => {
                self.waiting.insert(id.counter, reply);
            }
            Err(error) => {
                let _ = reply.try_send(Err(ProposeFailure::Refused(error)));
            }
        }
    }

    /// Encodes and queues one message for a peer.
    pub(crate) fn send(&mut self, to: MemberId, message: &tutti_net::gcs::Message) {
        self.frame_buffer.clear();
        let origin = FrameOrigin {
            incarnation: message.incarnation().0,
            ..self.origin
        };
        match encode_message(&mut self.frame_buffer, origin, message) {
            Ok(_) => {
                self.transport.send(PeerId(to.0), &self.frame_buffer);
            }
            Err(error) => {
                tracing::error!(member = %format_uuid(self.me), to = %format_uuid(to.0), %error, "cannot encode a message; dropped");
            }
        }
    }

    /// Says, now and then, that this member still waits for a seed.
    pub(crate) fn log_seed_wait(&mut self) {
        if self.pending_start.is_none() {
            return;
        }
        if self
            .seed_wait_logged
            .is_some_and(|at| at.elapsed() < SEED_WAIT_LOG_INTERVAL)
        {
            return;
        }
        self.seed_wait_logged = Some(Instant::now());
        tracing::warn!(member = %format_uuid(self.me),
            "no seed has answered yet; waiting (this member never starts a group of its own: \
             start one member with bootstrap, or check the seeds)");
    }
}

//! group: the io shell of the group communication core (`net::gcs`) on one monoio
//! "group core" thread (DESIGN.md sections 4 and 12).
//!
//! It owns, on that thread: the gcs core, the peer transport, the member's log and
//! metadata (`tutti_storage`), and the address directory; and, for other threads, a
//! [`GroupHandle`] to propose, read the tables, leave and shut down. It executes the
//! core's commands in order (see `commands.rs`): sends through the transport, entries
//! to the log with one append and one sync per loop turn before `on_persisted` (so a
//! `PrepareOk` always follows durability under `log_sync = batch`), truncations and meta
//! synchronously, deliveries to the digest, the proposer and the [`DeliverySink`].
//! It reads the monotonic clock; the core never does.
//!
//! ```text
//!  other threads                      group core thread (monoio, io_uring or epoll)
//!  ─────────────                      ───────────────────────────────────────────────
//!  GroupHandle::propose ──queue──▶ Shell ──▶ Gcs ──commands──▶ Transport (peers, TCP)
//!        ▲   (reply on delivery)     │  ▲                  └──▶ Persistence (log, meta)
//!        └───────────────────────────┘  └── frames, timer       └──▶ DeliverySink
//!  members / connections / stats ◀── Shared (tables published once per loop turn)
//! ```
//!
//! Decisions written down here:
//! - Start-up: a data directory with state restarts the gcs from its log and meta
//!   (incarnation + 1, persisted at once); an empty one bootstraps a group only when
//!   told to, and otherwise dials its seeds and asks the first that answers to let it
//!   in. A member that reaches no seed waits and says so; it never forms a group.
//! - Seeds are peer addresses, not member ids: the transport dials them without knowing
//!   who listens there (`Transport::add_seed`), and the handshake tells.
//! - Members learn each other's peer and client addresses from directory frames (see
//!   `directory.rs`), saved in the data directory for restarts.
//! - The members table shows every member of the latest configuration in this member's
//!   log, with the state the gcs last reported; a member that left or was expelled
//!   shows only itself.
//! - The storage calls (append, fdatasync) run on the group core thread and block it
//!   while they run: a sync costs the loop one disk flush per turn, shared by every
//!   entry of that turn.
//!
//! It must never interpret a payload, and nothing a peer or a client sends may make it
//! panic.

mod commands;
pub mod constants;
mod delivery;
mod directory;
mod error;
mod handle;
mod identity;
mod persist;
mod shell;
mod start;
mod tables;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tutti_net::gcs::constants::{
    HEARTBEAT_INTERVAL_DEFAULT, MEMBER_EXPEL_TIMEOUT_DEFAULT, SUSPICION_TIMEOUT_DEFAULT,
};
use tutti_net::transport::IoBackend;
use tutti_storage::log::SyncPolicy;

pub use delivery::{ChannelSink, Delivered, DeliverySink, DigestHistory, DiscardSink};
pub use directory::MemberAddress;
pub use error::{GroupError, ProposeFailure};
pub use handle::{GroupHandle, ProposalTicket};
pub use identity::{format_uuid, parse_uuid};
pub use tables::{state_name, ConnectionRow, GroupStats, MemberRole, MemberRow};

/// Default `member_weight` (Group Replication's default).
pub const MEMBER_WEIGHT_DEFAULT: u8 = 50;

/// How one member's group core is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupOptions {
    /// The group (a UUID as u128, not nil).
    pub group_name: u128,
    /// Where the identity, log, metadata and directory live.
    pub data_dir: PathBuf,
    /// Where the peer listener binds; also the address announced to the other members,
    /// so it must be one they can reach (not 0.0.0.0).
    pub peer_addr: SocketAddr,
    /// The client (RESP) address shown in the members table.
    pub client_addr: SocketAddr,
    /// Peer addresses of members to ask to join through.
    pub seeds: Vec<SocketAddr>,
    /// Create the group (only the first member of a new group, only on its first start).
    pub bootstrap: bool,
    /// When log appends are synced.
    pub log_sync: SyncPolicy,
    /// io_uring, epoll, or a start-up probe.
    pub io_backend: IoBackend,
    /// Send something to every member at least this often.
    pub heartbeat_interval: Duration,
    /// Silent this long => UNREACHABLE.
    pub suspicion_timeout: Duration,
    /// UNREACHABLE this long => expelled.
    pub member_expel_timeout: Duration,
    /// Without a majority this long => ERROR (zero: wait forever).
    pub unreachable_majority_timeout: Duration,
    /// `MEMBER_WEIGHT` (0..=100).
    pub member_weight: u8,
    /// The core to pin the group core thread to, if any.
    pub core: Option<usize>,
}

impl GroupOptions {
    /// Options with Group Replication's defaults for everything not given.
    pub fn new(
        group_name: u128,
        data_dir: PathBuf,
        peer_addr: SocketAddr,
        client_addr: SocketAddr,
    ) -> GroupOptions {
        GroupOptions {
            group_name,
            data_dir,
            peer_addr,
            client_addr,
            seeds: Vec::new(),
            bootstrap: false,
            log_sync: SyncPolicy::Batch,
            io_backend: IoBackend::Auto,
            heartbeat_interval: HEARTBEAT_INTERVAL_DEFAULT,
            suspicion_timeout: SUSPICION_TIMEOUT_DEFAULT,
            member_expel_timeout: MEMBER_EXPEL_TIMEOUT_DEFAULT,
            unreachable_majority_timeout: Duration::ZERO,
            member_weight: MEMBER_WEIGHT_DEFAULT,
            core: None,
        }
    }
}

/// Starts the group core thread for `options`, delivering to `sink`. Returns once the
/// log, metadata and peer listener are open (or with the reason they are not).
pub fn start(
    options: GroupOptions,
    sink: Box<dyn DeliverySink>,
) -> Result<GroupHandle, GroupError> {
    start::start(options, sink)
}

//! The monitoring tables of the group core, as plain rows: the members table (Group
//! Replication's `replication_group_members`), the connection table (per peer, from the
//! transport's counters) and the group core's own counters.
//!
//! One implementation of each table serves every face: the RESP reply, `tutti status`
//! and the metrics read these rows. The rows are built on the group core thread and
//! read by any thread. This module must never decide a member's state; it only shows
//! what the gcs reported.

use std::fmt;
use std::net::SocketAddr;
use std::time::SystemTime;

use tutti_net::gcs::MemberState;
use tutti_net::transport::{ConnectionState, TransportSnapshot};

use super::constants::MEMBER_VERSION;
use super::identity::format_uuid;

/// `MEMBER_STATE` as Group Replication spells it.
pub fn state_name(state: MemberState) -> &'static str {
    match state {
        MemberState::Online => "ONLINE",
        MemberState::Recovering => "RECOVERING",
        MemberState::Unreachable => "UNREACHABLE",
        MemberState::Error => "ERROR",
        MemberState::Offline => "OFFLINE",
    }
}

/// `MEMBER_ROLE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRole {
    /// Accepts writes (every member in multi-primary mode).
    Primary,
    /// Read-only (single-primary mode, not the primary).
    Secondary,
}

impl fmt::Display for MemberRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemberRole::Primary => "PRIMARY",
            MemberRole::Secondary => "SECONDARY",
        })
    }
}

/// One row of the members table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRow {
    /// `GROUP_NAME` (UUID).
    pub group_name: String,
    /// `MEMBER_ID` (UUID).
    pub member_id: String,
    /// `MEMBER_HOST`: the host of the member's client address ("" when not known yet).
    pub member_host: String,
    /// `MEMBER_PORT`: the port of the member's client address (0 when not known yet).
    pub member_port: u16,
    /// `MEMBER_STATE`.
    pub member_state: MemberState,
    /// `MEMBER_ROLE`.
    pub member_role: MemberRole,
    /// `MEMBER_VERSION`.
    pub member_version: String,
    /// `MEMBER_WEIGHT` (0..=100).
    pub member_weight: u8,
    /// `VIEW_ID`: the view number this member is in.
    pub view_id: String,
}

impl MemberRow {
    /// Column names, in the order of [`MemberRow::values`].
    pub const COLUMNS: [&'static str; 9] = [
        "GROUP_NAME",
        "MEMBER_ID",
        "MEMBER_HOST",
        "MEMBER_PORT",
        "MEMBER_STATE",
        "MEMBER_ROLE",
        "MEMBER_VERSION",
        "MEMBER_WEIGHT",
        "VIEW_ID",
    ];

    /// The row's values as text, in column order.
    pub fn values(&self) -> [String; 9] {
        [
            self.group_name.clone(),
            self.member_id.clone(),
            self.member_host.clone(),
            self.member_port.to_string(),
            state_name(self.member_state).to_owned(),
            self.member_role.to_string(),
            self.member_version.clone(),
            self.member_weight.to_string(),
            self.view_id.clone(),
        ]
    }
}

/// What the table needs to know about one member to build its row.
pub struct MemberFacts {
    /// The member.
    pub member: u128,
    /// Its state as reported.
    pub state: MemberState,
    /// Its client address, when the directory knows it.
    pub client_addr: Option<SocketAddr>,
    /// Its weight.
    pub weight: u8,
}

/// Builds a members-table row.
pub fn member_row(group_name: u128, view: u64, facts: &MemberFacts) -> MemberRow {
    MemberRow {
        group_name: format_uuid(group_name),
        member_id: format_uuid(facts.member),
        member_host: facts
            .client_addr
            .map(|addr| addr.ip().to_string())
            .unwrap_or_default(),
        member_port: facts.client_addr.map_or(0, |addr| addr.port()),
        member_state: facts.state,
        member_role: MemberRole::Primary,
        member_version: MEMBER_VERSION.to_owned(),
        member_weight: facts.weight,
        view_id: view.to_string(),
    }
}

/// One row of the connection table: one peer as the transport sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRow {
    /// The peer (UUID).
    pub member_id: String,
    /// Its peer address, when known.
    pub address: String,
    /// Where the connection stands.
    pub state: String,
    /// Frames sent.
    pub messages_sent: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Frames received.
    pub messages_received: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Shortest frame sent or received, in bytes (0 before the first).
    pub message_bytes_min: u64,
    /// Longest frame sent or received, in bytes.
    pub message_bytes_max: u64,
    /// Heartbeats sent.
    pub heartbeats_sent: u64,
    /// Heartbeats received.
    pub heartbeats_received: u64,
    /// Frames dropped (queue full or connection lost).
    pub messages_dropped: u64,
    /// The last error, with its age in seconds ("" when none).
    pub last_error: String,
}

impl ConnectionRow {
    /// Column names, in the order of [`ConnectionRow::values`].
    pub const COLUMNS: [&'static str; 13] = [
        "MEMBER_ID",
        "ADDRESS",
        "STATE",
        "MESSAGES_SENT",
        "BYTES_SENT",
        "MESSAGES_RECEIVED",
        "BYTES_RECEIVED",
        "MESSAGE_BYTES_MIN",
        "MESSAGE_BYTES_MAX",
        "HEARTBEATS_SENT",
        "HEARTBEATS_RECEIVED",
        "MESSAGES_DROPPED",
        "LAST_ERROR",
    ];

    /// The row's values as text, in column order.
    pub fn values(&self) -> [String; 13] {
        [
            self.member_id.clone(),
            self.address.clone(),
            self.state.clone(),
            self.messages_sent.to_string(),
            self.bytes_sent.to_string(),
            self.messages_received.to_string(),
            self.bytes_received.to_string(),
            self.message_bytes_min.to_string(),
            self.message_bytes_max.to_string(),
            self.heartbeats_sent.to_string(),
            self.heartbeats_received.to_string(),
            self.messages_dropped.to_string(),
            self.last_error.clone(),
        ]
    }
}

/// The connection table of a transport snapshot, plus one row per refused connection
/// (garbage on the peer port, another group), so those show up where people look.
pub fn connection_rows(snapshot: &TransportSnapshot) -> Vec<ConnectionRow> {
    let now = SystemTime::now();
    let age = |at: SystemTime| now.duration_since(at).map_or(0, |age| age.as_secs());
    let mut rows: Vec<ConnectionRow> = snapshot
        .peers
        .iter()
        .map(|peer| ConnectionRow {
            member_id: format_uuid(peer.peer.0),
            address: peer
                .address
                .map(|addr| addr.to_string())
                .unwrap_or_default(),
            state: connection_state_name(peer.state).to_owned(),
            messages_sent: peer.messages_sent,
            bytes_sent: peer.bytes_sent,
            messages_received: peer.messages_received,
            bytes_received: peer.bytes_received,
            message_bytes_min: peer.message_bytes_min.unwrap_or(0),
            message_bytes_max: peer.message_bytes_max.unwrap_or(0),
            heartbeats_sent: peer.heartbeats_sent,
            heartbeats_received: peer.heartbeats_received,
            messages_dropped: peer.messages_dropped,
            last_error: peer
                .last_error
                .as_ref()
                .map(|error| format!("{} ({}s ago)", error.text, age(error.at)))
                .unwrap_or_default(),
        })
        .collect();
    for rejection in &snapshot.recent_rejections {
        rows.push(ConnectionRow {
            member_id: rejection
                .claimed_peer
                .map(|peer| format_uuid(peer.0))
                .unwrap_or_default(),
            address: rejection.remote.to_string(),
            state: "refused".to_owned(),
            messages_sent: 0,
            bytes_sent: 0,
            messages_received: 0,
            bytes_received: 0,
            message_bytes_min: 0,
            message_bytes_max: 0,
            heartbeats_sent: 0,
            heartbeats_received: 0,
            messages_dropped: 0,
            last_error: format!("{} ({}s ago)", rejection.text, age(rejection.at)),
        });
    }
    rows
}

fn connection_state_name(state: ConnectionState) -> &'static str {
    match state {
        ConnectionState::Waiting => "WAITING",
        ConnectionState::Connecting => "CONNECTING",
        ConnectionState::BackingOff => "BACKING_OFF",
        ConnectionState::Connected => "CONNECTED",
    }
}

/// The group core's own counters and position, published once per loop turn.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// This member (UUID).
    pub member_id: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// Its current view.
    pub view: u64,
    /// The current sequencer (UUID), when known.
    pub sequencer: Option<String>,
    /// Its own state.
    pub state: Option<MemberState>,
    /// Entries delivered since start (a restart delivers the log again from seqno 1).
    pub delivered_count: u64,
    /// The last delivered seqno.
    pub last_delivered: u64,
    /// The xxh3 digest of the delivered prefix up to `last_delivered`.
    pub digest: u64,
    /// The commit point held here.
    pub commit_seqno: u64,
    /// The last seqno in the log.
    pub log_last_seqno: u64,
    /// Proposals of this member not yet delivered.
    pub proposals_pending: u64,
    /// Log appends (group commits) made.
    pub log_appends: u64,
    /// Frames from peers that did not decode.
    pub frames_undecodable: u64,
    /// Views (configurations) installed since start; a restart counts the ones it
    /// replays from its log again.
    pub view_changes: u64,
}

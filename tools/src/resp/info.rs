//! `INFO [section]` and `ROLE`, shaped like Redis's so Redis-aware tools read them,
//! with a `# Group` section for what Redis has no word for, and the counters they show.
//!
//! Replication in Redis's words: a member that takes writes (the primary, or any
//! lowest-version member of a multi-primary group) answers `role:master` (and ROLE
//! `master`); a secondary answers `role:slave` with the primary's client address as
//! its master, so Redis-aware clients find where to write. The offset is the watermark
//! (the highest seqno applied here with everything before it). `connected_slaves:0`:
//! the members replicate through the group's total order, shown in `# Group` and
//! `GROUP MEMBERS`, not as Redis replicas.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use bytes::Bytes;
use tutti_engine::group::{format_uuid, state_name};
use tutti_engine::member::Member;
use tutti_net::gcs::MemberState;

use super::frame::Frame;
use super::CLIENTS_MAX;

/// Process-wide counters of the client port (one process is one member).
pub(crate) struct Counters {
    /// Connections accepted since start.
    pub(crate) connections_received: AtomicU64,
    /// Connections refused because `CLIENTS_MAX` were open.
    pub(crate) connections_rejected: AtomicU64,
    /// Connections open now.
    pub(crate) connected: AtomicU64,
    /// Commands read since start.
    pub(crate) commands_processed: AtomicU64,
}

/// The client port's counters.
pub(crate) static COUNTERS: Counters = Counters {
    connections_received: AtomicU64::new(0),
    connections_rejected: AtomicU64::new(0),
    connected: AtomicU64::new(0),
    commands_processed: AtomicU64::new(0),
};

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Marks the start of the client port (for `uptime_in_seconds`).
pub(crate) fn mark_started() {
    let _ = STARTED.get_or_init(Instant::now);
}

const SECTIONS: [&str; 6] = [
    "server",
    "clients",
    "stats",
    "replication",
    "group",
    "keyspace",
];

/// `INFO [section ...]`.
pub(crate) fn info(args: &[Bytes], member: &Member) -> Frame {
    let asked: Vec<String> = args[1..]
        .iter()
        .map(|section| String::from_utf8_lossy(section).to_ascii_lowercase())
        .collect();
    let all = asked.is_empty()
        || asked
            .iter()
            .any(|section| matches!(section.as_str(), "all" | "everything" | "default"));
    let mut text = String::new();
    for section in SECTIONS {
        if all || asked.iter().any(|asked| asked == section) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            section_text(section, member, &mut text);
        }
    }
    Frame::Verbatim(text)
}

fn section_text(section: &str, member: &Member, text: &mut String) {
    let lines: Vec<(String, String)> = match section {
        "server" => server(member),
        "clients" => vec![
            pair(
                "connected_clients",
                COUNTERS.connected.load(Ordering::Relaxed),
            ),
            pair("maxclients", CLIENTS_MAX),
            pair("blocked_clients", 0),
        ],
        "stats" => vec![
            pair(
                "total_connections_received",
                COUNTERS.connections_received.load(Ordering::Relaxed),
            ),
            pair(
                "total_commands_processed",
                COUNTERS.commands_processed.load(Ordering::Relaxed),
            ),
            pair(
                "rejected_connections",
                COUNTERS.connections_rejected.load(Ordering::Relaxed),
            ),
        ],
        "replication" => {
            let mut lines = match primary_address(member) {
                None => vec![pair("role", "master")],
                Some((host, port)) => vec![
                    pair("role", "slave"),
                    pair("master_host", host),
                    pair("master_port", port),
                    pair("master_link_status", "up"),
                ],
            };
            lines.extend([
                pair("connected_slaves", 0),
                pair("master_failover_state", "no-failover"),
                pair("master_replid", group_name_hex(member)),
                pair("master_repl_offset", member.watermark().0),
            ]);
            lines
        }
        "group" => group(member),
        _ => vec![pair(
            "db0",
            format!(
                "keys={},expires=0,avg_ttl=0",
                member.store().len_at(member.watermark())
            ),
        )],
    };
    let title = match section {
        "server" => "Server",
        "clients" => "Clients",
        "stats" => "Stats",
        "replication" => "Replication",
        "group" => "Group",
        _ => "Keyspace",
    };
    text.push_str("# ");
    text.push_str(title);
    text.push_str("\r\n");
    for (name, value) in lines {
        text.push_str(&name);
        text.push(':');
        text.push_str(&value);
        text.push_str("\r\n");
    }
}

fn pair(name: &str, value: impl std::fmt::Display) -> (String, String) {
    (name.to_owned(), value.to_string())
}

fn group_name_hex(member: &Member) -> String {
    member
        .group()
        .members()
        .first()
        .map(|row| row.group_name.replace('-', ""))
        .unwrap_or_default()
}

fn server(member: &Member) -> Vec<(String, String)> {
    let uptime = STARTED
        .get()
        .map_or(0, |started| started.elapsed().as_secs());
    let client_port = super::settings::option("client_address")
        .and_then(|address| address.rsplit(':').next().map(ToOwned::to_owned))
        .unwrap_or_default();
    vec![
        // The Redis version whose commands and replies tutti follows.
        pair("redis_version", "7.0.0"),
        pair("tutti_version", env!("CARGO_PKG_VERSION")),
        pair("redis_mode", "standalone"),
        pair("os", std::env::consts::OS),
        pair("arch_bits", usize::BITS),
        pair(
            "multiplexing_api",
            super::settings::option("io_backend").unwrap_or_default(),
        ),
        pair("process_id", std::process::id()),
        pair(
            "run_id",
            format_uuid(member.group().member_id()).replace('-', ""),
        ),
        pair("tcp_port", client_port),
        pair("uptime_in_seconds", uptime),
        pair("uptime_in_days", uptime / 86_400),
    ]
}

fn group(member: &Member) -> Vec<(String, String)> {
    let group = member.group();
    let stats = group.stats();
    let rows = member.members();
    let online = rows
        .iter()
        .filter(|row| row.member_state == MemberState::Online)
        .count();
    let mut lines = vec![
        pair(
            "group_name",
            rows.first()
                .map(|row| row.group_name.clone())
                .unwrap_or_default(),
        ),
        pair("mode", member.mode_name()),
        pair("member_id", &stats.member_id),
        pair("member_state", stats.state.map_or("OFFLINE", state_name)),
        pair("view", stats.view),
        pair("sequencer", stats.sequencer.clone().unwrap_or_default()),
        pair("members", rows.len()),
        pair("members_online", online),
        // The member stats below include the watermark.
        pair("last_delivered", stats.last_delivered),
        pair("autocommit_retries", member.autocommit_retries()),
    ];
    lines.extend(super::admin::flow_pairs(member));
    lines.extend(
        member
            .stats()
            .columns()
            .into_iter()
            .map(|(name, value)| pair(&name.to_ascii_lowercase(), value)),
    );
    lines
}

/// `ROLE`: a member that takes writes is a master (offset: the watermark, no Redis
/// replicas); a secondary is a slave of the primary's client address.
pub(crate) fn role(member: &Member) -> Frame {
    match primary_address(member) {
        None => Frame::Array(vec![
            Frame::bulk("master"),
            Frame::count(member.watermark().0),
            Frame::Array(Vec::new()),
        ]),
        Some((host, port)) => Frame::Array(vec![
            Frame::bulk("slave"),
            Frame::bulk(host),
            Frame::count(u64::from(port)),
            Frame::bulk("connected"),
            Frame::count(member.watermark().0),
        ]),
    }
}

/// The primary's client address, when this member is a secondary of a known primary.
fn primary_address(member: &Member) -> Option<(String, u16)> {
    let roles = member.roles();
    let primary = format_uuid(roles.primary()?.0);
    if primary == format_uuid(member.group().member_id()) {
        return None;
    }
    member
        .members()
        .into_iter()
        .find(|row| row.member_id == primary && row.member_port != 0)
        .map(|row| (row.member_host, row.member_port))
}

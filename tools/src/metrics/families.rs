//! What the metrics endpoint exports: the members table, the member stats, the
//! connection table, the group core's counters and the four latency histograms, read
//! together into a [`Snapshot`] and written as Prometheus families.
//!
//! Every series carries `member` (this member's id); per-member rows use it for the row's
//! member, per-peer rows add `peer`, states add `state`. Names are `tutti_` + snake case,
//! units last (`_seconds`, `_bytes`, `_seqno`), counters end in `_total`. The README's
//! "Metrics" section lists them all; keep the two in step.

use tutti_engine::flow_control::FlowStats;
use tutti_engine::group::{state_name, ConnectionRow, GroupStats, MemberRow};
use tutti_engine::member::{Member, MemberStats};
use tutti_engine::metrics::Latencies;
use tutti_net::gcs::MemberState;

use super::exposition::{Exposition, Kind};

/// Every member state, in the members table's words.
const MEMBER_STATES: [MemberState; 5] = [
    MemberState::Online,
    MemberState::Recovering,
    MemberState::Unreachable,
    MemberState::Error,
    MemberState::Offline,
];

/// Every connection state, as the connection table spells them.
const CONNECTION_STATES: [&str; 4] = ["WAITING", "CONNECTING", "BACKING_OFF", "CONNECTED"];

/// The connection table's state for a refused connection (not a peer).
const REFUSED: &str = "refused";

/// The member stats columns (GR's names) and how each is exported. A column missing
/// here is still exported, as a gauge named after it (see [`member_stat_family`]).
const MEMBER_STAT_FAMILIES: [(&str, &str, Kind, &str); 12] = [
    ("COUNT_TRANSACTIONS_IN_QUEUE", "tutti_transactions_in_queue", Kind::Gauge,
        "This member's transactions proposed and waiting for their certification (GR's COUNT_TRANSACTIONS_IN_QUEUE)."),
    ("COUNT_TRANSACTIONS_CHECKED", "tutti_transactions_checked_total", Kind::Counter,
        "Transactions certified here (GR's COUNT_TRANSACTIONS_CHECKED)."),
    ("COUNT_CONFLICTS_DETECTED", "tutti_conflicts_detected_total", Kind::Counter,
        "Certification conflicts detected here (GR's COUNT_CONFLICTS_DETECTED)."),
    ("COUNT_TRANSACTIONS_ROWS_VALIDATING", "tutti_transactions_rows_validating", Kind::Gauge,
        "Entries the certifier's write-set index holds (GR's COUNT_TRANSACTIONS_ROWS_VALIDATING)."),
    ("TRANSACTIONS_COMMITTED_ALL_MEMBERS", "tutti_transactions_committed_all_members_seqno", Kind::Gauge,
        "The stable seqno: every ONLINE member applied everything at or below it (GR's TRANSACTIONS_COMMITTED_ALL_MEMBERS)."),
    ("LAST_CONFLICT_FREE_TRANSACTION", "tutti_last_conflict_free_transaction_seqno", Kind::Gauge,
        "Seqno of the last transaction certified without conflict (GR's LAST_CONFLICT_FREE_TRANSACTION)."),
    ("COUNT_TRANSACTIONS_REMOTE_IN_APPLIER_QUEUE", "tutti_transactions_remote_in_applier_queue", Kind::Gauge,
        "Other members' committed transactions waiting for the appliers (GR's COUNT_TRANSACTIONS_REMOTE_IN_APPLIER_QUEUE)."),
    ("COUNT_TRANSACTIONS_REMOTE_APPLIED", "tutti_transactions_remote_applied_total", Kind::Counter,
        "Other members' transactions applied here (GR's COUNT_TRANSACTIONS_REMOTE_APPLIED)."),
    ("COUNT_TRANSACTIONS_LOCAL_PROPOSED", "tutti_transactions_local_proposed_total", Kind::Counter,
        "Transactions this member proposed (GR's COUNT_TRANSACTIONS_LOCAL_PROPOSED)."),
    ("COUNT_TRANSACTIONS_LOCAL_ROLLBACK", "tutti_transactions_local_rollback_total", Kind::Counter,
        "This member's transactions aborted by certification (GR's COUNT_TRANSACTIONS_LOCAL_ROLLBACK)."),
    ("WATERMARK", "tutti_watermark_seqno", Kind::Gauge,
        "The local watermark: every seqno at or below it is applied here."),
    ("COUNT_TRANSACTIONS_OUTCOME_UNKNOWN", "tutti_transactions_outcome_unknown_total", Kind::Counter,
        "This member's transactions whose outcome it could not learn."),
];

/// Everything exported, read at one scrape.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// This member's id (UUID).
    pub member_id: String,
    /// The members table.
    pub members: Vec<MemberRow>,
    /// The connection table.
    pub connections: Vec<ConnectionRow>,
    /// The group core's counters.
    pub group: GroupStats,
    /// GR's member stats.
    pub stats: MemberStats,
    /// The latency histograms.
    pub latencies: Latencies,
    /// Flow control.
    pub flow: FlowStats,
}

impl Snapshot {
    /// Reads every table of `member`.
    pub fn of(member: &Member) -> Snapshot {
        let group = member.group();
        Snapshot {
            member_id: tutti_engine::group::format_uuid(group.member_id()),
            members: member.members(),
            connections: group.connections(),
            group: group.stats(),
            stats: member.stats(),
            latencies: member.latencies(),
            flow: member.flow_stats(),
        }
    }
}

/// The Prometheus text of `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut text = Exposition::new();
    members(&mut text, snapshot);
    group(&mut text, snapshot);
    member_stats(&mut text, snapshot);
    flow_control(&mut text, snapshot);
    connections(&mut text, snapshot);
    latencies(&mut text, snapshot);
    text.finish()
}

fn members(text: &mut Exposition, snapshot: &Snapshot) {
    let name = "tutti_member_state";
    text.family(
        name,
        Kind::Gauge,
        "1 for each member's current state in this member's members table (MEMBER_STATE), 0 for the others.",
    );
    for row in &snapshot.members {
        for state in MEMBER_STATES {
            let labels = [
                ("member", row.member_id.as_str()),
                ("state", state_name(state)),
            ];
            text.sample(name, &labels, u64::from(row.member_state == state));
        }
    }
    let name = "tutti_member_info";
    text.family(
        name,
        Kind::Gauge,
        "Always 1: a member of the members table, with its group, client host and port, role and version as labels.",
    );
    for row in &snapshot.members {
        let port = row.member_port.to_string();
        let role = row.member_role.to_string();
        let labels = [
            ("member", row.member_id.as_str()),
            ("group", row.group_name.as_str()),
            ("host", row.member_host.as_str()),
            ("port", port.as_str()),
            ("role", role.as_str()),
            ("version", row.member_version.as_str()),
        ];
        text.sample(name, &labels, 1);
    }
    let name = "tutti_member_weight";
    text.family(name, Kind::Gauge, "MEMBER_WEIGHT of each member (0..=100).");
    for row in &snapshot.members {
        text.sample(
            name,
            &[("member", row.member_id.as_str())],
            u64::from(row.member_weight),
        );
    }
    let name = "tutti_member_view";
    text.family(
        name,
        Kind::Gauge,
        "VIEW_ID of each member's row: the view it is in.",
    );
    for row in &snapshot.members {
        if let Ok(view) = row.view_id.parse::<u64>() {
            text.sample(name, &[("member", row.member_id.as_str())], view);
        }
    }
}

fn group(text: &mut Exposition, snapshot: &Snapshot) {
    let stats = &snapshot.group;
    let is_sequencer = stats.sequencer.as_deref() == Some(snapshot.member_id.as_str());
    let families: [(&str, Kind, &str, u64); 10] = [
        ("tutti_group_view", Kind::Gauge, "The view this member is in.", stats.view),
        ("tutti_group_view_changes_total", Kind::Counter,
            "Views (configurations) this member installed since it started; a restart counts those it replays from its log again.",
            stats.view_changes),
        ("tutti_group_incarnation", Kind::Gauge, "This member's incarnation (restart counter).", stats.incarnation),
        ("tutti_group_is_sequencer", Kind::Gauge, "1 when this member is the sequencer of its view.", u64::from(is_sequencer)),
        ("tutti_group_delivered_total", Kind::Counter,
            "Entries delivered since start (a restart delivers its log again from seqno 1).", stats.delivered_count),
        ("tutti_group_last_delivered_seqno", Kind::Gauge, "The last seqno delivered here.", stats.last_delivered),
        ("tutti_group_commit_seqno", Kind::Gauge, "The commit point held here.", stats.commit_seqno),
        ("tutti_group_log_last_seqno", Kind::Gauge, "The last seqno in this member's log.", stats.log_last_seqno),
        ("tutti_group_proposals_pending", Kind::Gauge, "This member's proposals not delivered yet.", stats.proposals_pending),
        ("tutti_group_log_appends_total", Kind::Counter, "Log appends (group commits) made.", stats.log_appends),
    ];
    let labels = [("member", snapshot.member_id.as_str())];
    for (name, kind, help, value) in families {
        text.family(name, kind, help);
        text.sample(name, &labels, value);
    }
    let name = "tutti_group_frames_undecodable_total";
    text.family(
        name,
        Kind::Counter,
        "Frames from peers that did not decode (dropped).",
    );
    text.sample(name, &labels, stats.frames_undecodable);
}

fn flow_control(text: &mut Exposition, snapshot: &Snapshot) {
    let flow = &snapshot.flow;
    let families: [(&str, Kind, &str, u64); 5] = [
        ("tutti_flow_control_throttled", Kind::Gauge,
            "1 while flow control holds this member to a quota (a member's queue is over its threshold, or the quota is being released).",
            u64::from(flow.quota.is_some())),
        ("tutti_flow_control_quota", Kind::Gauge,
            "This member's proposals allowed per flow control period while throttled (0: not throttled).",
            flow.quota.unwrap_or(0)),
        ("tutti_flow_control_throttled_periods_total", Kind::Counter,
            "Flow control periods this member spent under a quota.", flow.throttled_periods),
        ("tutti_flow_control_throttled_waits_total", Kind::Counter,
            "Transactions that waited for the next period's quota.", flow.throttled_waits),
        ("tutti_flow_control_throttled_wait_microseconds_total", Kind::Counter,
            "Time transactions waited for the quota, microseconds.", flow.throttled_wait_us),
    ];
    let labels = [("member", snapshot.member_id.as_str())];
    for (name, kind, help, value) in families {
        text.family(name, kind, help);
        text.sample(name, &labels, value);
    }
}

/// How a member stats column is exported: its family's name, type and help.
fn member_stat_family(column: &str) -> (String, Kind, String) {
    match MEMBER_STAT_FAMILIES
        .iter()
        .find(|(known, ..)| *known == column)
    {
        Some(&(_, name, kind, help)) => (name.to_owned(), kind, help.to_owned()),
        None => (
            format!("tutti_member_stats_{}", column.to_ascii_lowercase()),
            Kind::Gauge,
            format!("The member stats column {column}."),
        ),
    }
}

fn member_stats(text: &mut Exposition, snapshot: &Snapshot) {
    let labels = [("member", snapshot.member_id.as_str())];
    for (column, value) in snapshot.stats.columns() {
        let (name, kind, help) = member_stat_family(column);
        text.family(&name, kind, &help);
        text.sample(&name, &labels, value);
    }
}

/// One numeric column of the connection table.
type Column = fn(&ConnectionRow) -> u64;

/// The connection table's numeric columns: family name, type, help, column.
const CONNECTION_FAMILIES: [(&str, Kind, &str, Column); 9] = [
    (
        "tutti_connection_sent_messages_total",
        Kind::Counter,
        "Frames sent to the peer.",
        |row| row.messages_sent,
    ),
    (
        "tutti_connection_sent_bytes_total",
        Kind::Counter,
        "Bytes sent to the peer.",
        |row| row.bytes_sent,
    ),
    (
        "tutti_connection_received_messages_total",
        Kind::Counter,
        "Frames received from the peer.",
        |row| row.messages_received,
    ),
    (
        "tutti_connection_received_bytes_total",
        Kind::Counter,
        "Bytes received from the peer.",
        |row| row.bytes_received,
    ),
    (
        "tutti_connection_message_min_bytes",
        Kind::Gauge,
        "Shortest frame sent to or received from the peer (0 before the first).",
        |row| row.message_bytes_min,
    ),
    (
        "tutti_connection_message_max_bytes",
        Kind::Gauge,
        "Longest frame sent to or received from the peer.",
        |row| row.message_bytes_max,
    ),
    (
        "tutti_connection_sent_heartbeats_total",
        Kind::Counter,
        "Heartbeats sent to the peer.",
        |row| row.heartbeats_sent,
    ),
    (
        "tutti_connection_received_heartbeats_total",
        Kind::Counter,
        "Heartbeats received from the peer.",
        |row| row.heartbeats_received,
    ),
    (
        "tutti_connection_dropped_messages_total",
        Kind::Counter,
        "Frames for the peer dropped (queue full or connection lost).",
        |row| row.messages_dropped,
    ),
];

/// The `peer` label of a connection row: the peer's id, else its address.
fn peer_label(row: &ConnectionRow) -> String {
    if row.member_id.is_empty() {
        row.address.clone()
    } else {
        row.member_id.clone()
    }
}

fn connections(text: &mut Exposition, snapshot: &Snapshot) {
    let peers: Vec<&ConnectionRow> = snapshot
        .connections
        .iter()
        .filter(|row| row.state != REFUSED)
        .collect();
    let me = snapshot.member_id.as_str();
    let name = "tutti_connection_state";
    text.family(
        name,
        Kind::Gauge,
        "1 for the current state of the connection to each peer, 0 for the others.",
    );
    for row in &peers {
        let peer = peer_label(row);
        for state in CONNECTION_STATES {
            let labels = [("member", me), ("peer", peer.as_str()), ("state", state)];
            text.sample(name, &labels, u64::from(row.state == state));
        }
    }
    for (name, kind, help, column) in CONNECTION_FAMILIES {
        text.family(name, kind, help);
        for row in &peers {
            let peer = peer_label(row);
            text.sample(
                name,
                &[("member", me), ("peer", peer.as_str())],
                column(row),
            );
        }
    }
    let name = "tutti_connection_last_error_info";
    text.family(
        name,
        Kind::Gauge,
        "Always 1: the last error of the connection to a peer, as the error label (peers without one are absent).",
    );
    for row in peers.iter().filter(|row| !row.last_error.is_empty()) {
        let peer = peer_label(row);
        let labels = [
            ("member", me),
            ("peer", peer.as_str()),
            ("error", without_age(&row.last_error)),
        ];
        text.sample(name, &labels, 1);
    }
    let name = "tutti_connections_refused_recent";
    text.family(
        name,
        Kind::Gauge,
        "Recently refused incoming peer connections (garbage on the peer port, another group); see GROUP CONNECTIONS.",
    );
    let refused = snapshot.connections.len() - peers.len();
    text.sample(name, &[("member", me)], refused as u64);
}

/// The connection table's error text without its " (Ns ago)" suffix, so that a label
/// value does not change every second.
fn without_age(error: &str) -> &str {
    match error.rfind(" (") {
        Some(at) if error.ends_with("s ago)") => &error[..at],
        _ => error,
    }
}

fn latencies(text: &mut Exposition, snapshot: &Snapshot) {
    let latencies = &snapshot.latencies;
    let families = [
        ("tutti_commit_latency_seconds",
            "A local transaction from its submission to the group to its outcome here (committed and applied here, aborted, or unknown); one sample per proposal.",
            &latencies.commit),
        ("tutti_certification_latency_seconds",
            "Certification of one delivered transaction (Replica::on_delivered).",
            &latencies.certification),
        ("tutti_apply_latency_seconds",
            "A committed transaction from its hand-over to the appliers until the watermark passes it.",
            &latencies.apply),
        ("tutti_ordering_latency_seconds",
            "A local proposal from its submission to the group core to its delivery here.",
            &latencies.ordering),
    ];
    let labels = [("member", snapshot.member_id.as_str())];
    for (name, help, histogram) in families {
        text.family(name, Kind::Histogram, help);
        text.histogram(name, &labels, histogram);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use tutti_engine::group::MemberRole;

    use super::super::exposition::{valid_label_name, valid_metric_name};
    use super::*;

    fn snapshot() -> Snapshot {
        let row = |id: &str, state| MemberRow {
            group_name: "g".to_owned(),
            member_id: id.to_owned(),
            member_host: "127.0.0.1".to_owned(),
            member_port: 6379,
            member_state: state,
            member_role: MemberRole::Primary,
            member_version: "0.1.0".to_owned(),
            member_weight: 50,
            view_id: "3".to_owned(),
        };
        let connection = |id: &str, state: &str, error: &str| ConnectionRow {
            member_id: id.to_owned(),
            address: "127.0.0.1:1".to_owned(),
            state: state.to_owned(),
            messages_sent: 7,
            bytes_sent: 700,
            messages_received: 8,
            bytes_received: 800,
            message_bytes_min: 64,
            message_bytes_max: 128,
            heartbeats_sent: 1,
            heartbeats_received: 2,
            messages_dropped: 0,
            last_error: error.to_owned(),
        };
        Snapshot {
            member_id: "a".to_owned(),
            members: vec![
                row("a", MemberState::Online),
                row("b", MemberState::Unreachable),
            ],
            connections: vec![
                connection("b", "CONNECTED", "reset \"by\" peer (3s ago)"),
                connection("", REFUSED, "not a frame (1s ago)"),
            ],
            group: GroupStats {
                member_id: "a".to_owned(),
                sequencer: Some("a".to_owned()),
                view: 3,
                view_changes: 2,
                ..GroupStats::default()
            },
            stats: MemberStats {
                count_transactions_checked: 5,
                ..MemberStats::default()
            },
            latencies: Latencies::default(),
            flow: FlowStats {
                mode: "QUOTA".to_owned(),
                quota: Some(120),
                throttled_by: None,
                throttled_periods: 3,
                throttled_waits: 4,
                throttled_wait_us: 5_000,
            },
        }
    }

    #[test]
    fn every_member_stats_column_has_its_own_family() {
        let columns = MemberStats::default().columns();
        assert_eq!(columns.len(), MEMBER_STAT_FAMILIES.len());
        for (column, _) in columns {
            assert!(
                MEMBER_STAT_FAMILIES
                    .iter()
                    .any(|(known, ..)| *known == column),
                "the member stats column {column} has no family"
            );
        }
        let (name, kind, _) = member_stat_family("SOME_NEW_COLUMN");
        assert_eq!(
            (name.as_str(), kind),
            ("tutti_member_stats_some_new_column", Kind::Gauge)
        );
    }

    #[test]
    fn every_family_is_declared_once_with_valid_names_before_its_samples() {
        let text = render(&snapshot());
        let mut declared = HashSet::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap_or_default().to_owned();
                assert!(valid_metric_name(&name), "{name}");
                assert!(name.starts_with("tutti_"), "{name}");
                assert!(declared.insert(name.clone()), "{name} declared twice");
                current = name;
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                assert!(
                    name.starts_with(current.as_str()),
                    "{line} outside its family {current}"
                );
                if let Some(labels) = line.split_once('{') {
                    for pair in labels.1.split("\",") {
                        let label = pair.split('=').next().unwrap_or_default();
                        assert!(valid_label_name(label), "{label} in {line}");
                    }
                }
            }
        }
    }

    #[test]
    fn tables_become_the_expected_samples() {
        let text = render(&snapshot());
        for expected in [
            "tutti_member_state{member=\"a\",state=\"ONLINE\"} 1",
            "tutti_member_state{member=\"a\",state=\"OFFLINE\"} 0",
            "tutti_member_state{member=\"b\",state=\"UNREACHABLE\"} 1",
            "tutti_member_view{member=\"b\"} 3",
            "tutti_group_view_changes_total{member=\"a\"} 2",
            "tutti_group_is_sequencer{member=\"a\"} 1",
            "tutti_transactions_checked_total{member=\"a\"} 5",
            "tutti_connection_state{member=\"a\",peer=\"b\",state=\"CONNECTED\"} 1",
            "tutti_connection_sent_bytes_total{member=\"a\",peer=\"b\"} 700",
            "tutti_connection_last_error_info{member=\"a\",peer=\"b\",error=\"reset \\\"by\\\" peer\"} 1",
            "tutti_connections_refused_recent{member=\"a\"} 1",
            "tutti_commit_latency_seconds_bucket{member=\"a\",le=\"+Inf\"} 0",
            "tutti_ordering_latency_seconds_count{member=\"a\"} 0",
        ] {
            assert!(text.lines().any(|line| line == expected), "missing {expected}\n{text}");
        }
        assert!(
            !text.contains("refused\""),
            "a refused connection is not a peer"
        );
    }

    #[test]
    fn the_age_of_an_error_is_not_part_of_its_label() {
        assert_eq!(
            without_age("connection refused (12s ago)"),
            "connection refused"
        );
        assert_eq!(without_age("odd (text)"), "odd (text)");
        assert_eq!(without_age(""), "");
    }
}

//! The GROUP admin and diagnostic commands: members, connections, stats, member stats,
//! the group's status as one JSON document, leaving the group, raw proposals and
//! digests. One implementation of each table serves every face.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tutti_engine::group::{ConnectionRow, GroupHandle, MemberRole, MemberRow};
use tutti_engine::member::Member;
use tutti_engine::txn::{encode_message, EngineMessage};
use tutti_net::gcs::MemberState;

use super::frame::Frame;
use super::Reply;

/// Longest `GROUP LEAVE` waits for this member's removal to be committed.
pub(crate) const LEAVE_WAIT: Duration = Duration::from_secs(10);

fn table(columns: &[&'static str], rows: impl Iterator<Item = Vec<String>>) -> Frame {
    Frame::Array(
        rows.map(|values| {
            Frame::Array(
                columns
                    .iter()
                    .zip(values)
                    .flat_map(|(column, value)| [Frame::bulk(*column), Frame::bulk(value)])
                    .collect(),
            )
        })
        .collect(),
    )
}

pub(super) fn group_command(args: &[Bytes], member: &Arc<Member>) -> Reply {
    let group = member.group();
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_uppercase();
    let frame = match (sub.as_str(), args.len()) {
        ("MEMBERS", 2) => table(&MemberRow::COLUMNS, group.members().iter().map(|row| row.values().to_vec())),
        ("CONNECTIONS", 2) => table(&ConnectionRow::COLUMNS, group.connections().iter().map(|row| row.values().to_vec())),
        ("STATS", 2) => stats(group),
        ("STATUS", 2) => Frame::bulk(status_json(member).to_string()),
        ("LEAVE", 2) => return leave(Arc::clone(member)),
        ("MEMBER-STATS", 2) => {
            let stats = member.stats().columns();
            let mut columns = vec!["MEMBER_ID"];
            columns.extend(stats.iter().map(|(name, _)| *name));
            let mut values = vec![tutti_engine::group::format_uuid(group.member_id())];
            values.extend(stats.iter().map(|(_, value)| value.to_string()));
            table(&columns, std::iter::once(values))
        }
        ("PROPOSE", 3) => {
            // Wrapped as an opaque engine message: ordered and delivered, never applied.
            let mut payload = Vec::with_capacity(args[2].len() + 4);
            encode_message(&EngineMessage::Opaque(args[2].to_vec()), &mut payload);
            return match group.submit(Arc::from(payload)) {
                Ok(ticket) => Reply::Delivery(ticket),
                Err(failure) => Reply::Now(Frame::error(format!("ERR {failure}"))),
            }
        }
        ("STORE-DIGEST", 2) => {
            let watermark = member.watermark();
            digest_reply(watermark.0, member.store().digest(watermark))
        }
        ("LOG-DIGEST", 2) => {
            let (seqno, digest) = group.last_digest();
            digest_reply(seqno, digest)
        }
        ("LOG-DIGEST", 3) => match std::str::from_utf8(&args[2]).ok().and_then(|text| text.parse::<u64>().ok()) {
            None => Frame::error("ERR seqno must be a non-negative integer"),
            Some(seqno) => match group.digest_at(seqno) {
                Some(digest) => digest_reply(seqno, digest),
                None => Frame::error(format!(
                    "ERR seqno {seqno} is not delivered here (last delivered {}) or no longer kept",
                    group.last_digest().0
                )),
            },
        },
        _ => Frame::error(format!(
            "ERR unknown GROUP subcommand or wrong arguments '{sub}': use MEMBERS, CONNECTIONS, STATS, STATUS, LEAVE, MEMBER-STATS, STORE-DIGEST, PROPOSE <bytes> or LOG-DIGEST [seqno]"
        )),
    };
    Reply::Now(frame)
}

fn digest_reply(seqno: u64, digest: u64) -> Frame {
    Frame::Array(vec![
        Frame::Integer(i64::try_from(seqno).unwrap_or(i64::MAX)),
        Frame::bulk(format!("{digest:016x}")),
    ])
}

fn stats(group: &GroupHandle) -> Frame {
    let stats = group.stats();
    let pairs = [
        ("member_id", stats.member_id),
        ("incarnation", stats.incarnation.to_string()),
        (
            "state",
            stats
                .state
                .map_or("OFFLINE", tutti_engine::group::state_name)
                .to_owned(),
        ),
        ("view", stats.view.to_string()),
        ("sequencer", stats.sequencer.unwrap_or_default()),
        ("delivered_count", stats.delivered_count.to_string()),
        ("last_delivered", stats.last_delivered.to_string()),
        ("digest", format!("{:016x}", stats.digest)),
        ("commit_seqno", stats.commit_seqno.to_string()),
        ("log_last_seqno", stats.log_last_seqno.to_string()),
        ("proposals_pending", stats.proposals_pending.to_string()),
        ("log_appends", stats.log_appends.to_string()),
        ("frames_undecodable", stats.frames_undecodable.to_string()),
    ];
    Frame::Array(
        pairs
            .into_iter()
            .flat_map(|(name, value)| [Frame::bulk(name), Frame::bulk(value)])
            .collect(),
    )
}

/// `GROUP LEAVE`: asks the group to remove this member and waits (on a thread of its
/// own, bounded by [`LEAVE_WAIT`]) until the removal is committed.
fn leave(member: Arc<Member>) -> Reply {
    Reply::Later(Box::pin(async move {
        let (reply, answer) = flume::bounded(1);
        let group = Arc::clone(member.group());
        let started = std::thread::Builder::new()
            .name("tutti-leave".to_owned())
            .spawn(move || {
                let _ = reply.send(group.leave(LEAVE_WAIT));
            });
        if let Err(failure) = started {
            return Frame::error(format!("ERR cannot start leaving: {failure}"));
        }
        match answer.recv_async().await {
            Ok(MemberState::Offline) => Frame::ok(),
            Ok(state) => Frame::error(format!(
                "ERR not removed within {LEAVE_WAIT:?}: this member is {} (the last member of a group cannot leave it; a member without a majority cannot either)",
                tutti_engine::group::state_name(state)
            )),
            Err(_) => Frame::error("ERR leaving ended without an answer"),
        }
    }))
}

/// The group's status as MySQL Shell's `cluster.status()` shows it: one document with
/// the group, its mode, every member, and whether it tolerates failures.
pub(crate) fn status_json(member: &Member) -> serde_json::Value {
    let group = member.group();
    let rows = group.members();
    let stats = group.stats();
    let online = rows
        .iter()
        .filter(|row| row.member_state == MemberState::Online)
        .count();
    let tolerated = online.saturating_sub(1) / 2;
    let (status_code, status_text) = tolerance(online, rows.len(), tolerated);
    let own = member_address(&rows, &stats.member_id);
    let members: serde_json::Map<String, serde_json::Value> = rows
        .iter()
        .map(|row| {
            let address = format!("{}:{}", row.member_host, row.member_port);
            let mode = match (row.member_state, row.member_role) {
                (MemberState::Online, MemberRole::Primary) => "R/W",
                _ => "R/O",
            };
            (
                address.clone(),
                serde_json::json!({
                    "address": address,
                    "memberId": row.member_id,
                    "memberRole": row.member_role.to_string(),
                    "mode": mode,
                    "status": tutti_engine::group::state_name(row.member_state),
                    "version": row.member_version,
                    "weight": row.member_weight,
                }),
            )
        })
        .collect();
    serde_json::json!({
        "groupName": rows.first().map(|row| row.group_name.clone()).unwrap_or_default(),
        "topologyMode": "multi-primary",
        "status": status_code,
        "statusText": status_text,
        "membersOnline": online,
        "canTolerateFailures": tolerated,
        "viewId": stats.view,
        "topology": members,
        "groupInformationSourceMember": own,
    })
}

/// MySQL Shell's status codes: `OK`, `OK_PARTIAL`, `OK_NO_TOLERANCE`, `NO_QUORUM`.
fn tolerance(online: usize, total: usize, tolerated: usize) -> (&'static str, String) {
    let inactive = total.saturating_sub(online);
    let failures = if tolerated == 1 {
        "failure"
    } else {
        "failures"
    };
    let not_active = match inactive {
        0 => String::new(),
        1 => " 1 member is not active.".to_owned(),
        n => format!(" {n} members are not active."),
    };
    if online == 0 || online * 2 <= total {
        (
            "NO_QUORUM",
            format!("Group has no quorum: {online} of {total} members are ONLINE."),
        )
    } else if tolerated == 0 {
        (
            "OK_NO_TOLERANCE",
            format!("Group is NOT tolerant to any failures.{not_active}"),
        )
    } else if inactive > 0 {
        (
            "OK_PARTIAL",
            format!("Group is ONLINE and can tolerate up to {tolerated} {failures}.{not_active}"),
        )
    } else {
        (
            "OK",
            format!("Group is ONLINE and can tolerate up to {tolerated} {failures}."),
        )
    }
}

fn member_address(rows: &[MemberRow], member_id: &str) -> String {
    rows.iter()
        .find(|row| row.member_id == member_id)
        .map(|row| format!("{}:{}", row.member_host, row.member_port))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::tolerance;

    #[test]
    fn tolerance_follows_the_online_count() {
        assert_eq!(tolerance(3, 3, 1).0, "OK");
        assert_eq!(
            tolerance(5, 5, 2).1,
            "Group is ONLINE and can tolerate up to 2 failures."
        );
        assert_eq!(tolerance(2, 3, 0).0, "OK_NO_TOLERANCE");
        assert_eq!(tolerance(1, 1, 0).0, "OK_NO_TOLERANCE");
        assert_eq!(tolerance(3, 4, 1).0, "OK_PARTIAL");
        assert_eq!(tolerance(1, 3, 0).0, "NO_QUORUM");
    }
}

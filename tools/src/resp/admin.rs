//! The GROUP admin and diagnostic commands: members, connections, stats, member stats,
//! the group's status as one JSON document, leaving the group, the ordered role
//! operations (SET-PRIMARY, SWITCH-MODE), raw proposals and digests. One implementation of each table serves every face.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tutti_engine::group::{format_uuid, parse_uuid, ConnectionRow, MemberRole, MemberRow};
use tutti_engine::member::Member;
use tutti_engine::roles::RoleOp;
use tutti_engine::txn::{encode_message, EngineMessage};
use tutti_net::gcs::{MemberId, MemberState};

use super::frame::Frame;
use super::Reply;

/// Longest `GROUP LEAVE` waits for this member's removal to be committed.
pub(crate) const LEAVE_WAIT: Duration = Duration::from_secs(10);
/// Longest `GROUP SET-PRIMARY` and `GROUP SWITCH-MODE` wait to be ordered and applied here.
const ROLE_OP_WAIT: Duration = Duration::from_secs(30);

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
        ("MEMBERS", 2) => table(&MemberRow::COLUMNS, member.members().iter().map(|row| row.values().to_vec())),
        ("SET-PRIMARY", 3) => return match member_arg(&args[2]) {
            Ok(id) => role_op(member, RoleOp::SetPrimary(id)),
            Err(refusal) => Reply::Now(refusal),
        },
        ("SWITCH-MODE", 3 | 4) => return match switch_mode(args) {
            Ok(op) => role_op(member, op),
            Err(refusal) => Reply::Now(refusal),
        },
        ("CONNECTIONS", 2) => table(&ConnectionRow::COLUMNS, group.connections().iter().map(|row| row.values().to_vec())),
        ("STATS", 2) => stats(member),
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

fn stats(member: &Member) -> Frame {
    let stats = member.group().stats();
    let primary = member
        .roles()
        .primary()
        .map(|primary| format_uuid(primary.0))
        .unwrap_or_default();
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
        ("mode", member.mode_name().to_owned()),
        ("primary", primary),
    ];
    let flow = flow_pairs(member);
    let pairs = pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .chain(flow);
    Frame::Array(
        pairs
            .into_iter()
            .flat_map(|(name, value)| [Frame::bulk(name), Frame::bulk(value)])
            .collect(),
    )
}

/// Flow control's state as (name, value) pairs: the mode, this member's quota (empty when
/// not throttled), the member whose queue set it, and the throttle counters.
pub(crate) fn flow_pairs(member: &Member) -> Vec<(String, String)> {
    let flow = member.flow_stats();
    vec![
        ("flow_control_mode".to_owned(), flow.mode),
        (
            "flow_control_quota".to_owned(),
            flow.quota
                .map(|quota| quota.to_string())
                .unwrap_or_default(),
        ),
        (
            "flow_control_throttled_by".to_owned(),
            flow.throttled_by
                .map(|member| format_uuid(member.0))
                .unwrap_or_default(),
        ),
        (
            "flow_control_throttled_periods".to_owned(),
            flow.throttled_periods.to_string(),
        ),
        (
            "flow_control_throttled_waits".to_owned(),
            flow.throttled_waits.to_string(),
        ),
        (
            "flow_control_throttled_wait_us".to_owned(),
            flow.throttled_wait_us.to_string(),
        ),
    ]
}

/// A reply computed by `work` on a thread of its own (it blocks on the group), so the
/// session thread goes on serving other connections meanwhile.
fn on_thread(name: &str, work: impl FnOnce() -> Frame + Send + 'static) -> Reply {
    let name = name.to_owned();
    Reply::Later(Box::pin(async move {
        let (reply, answer) = flume::bounded(1);
        let started = std::thread::Builder::new()
            .name(format!("tutti-{name}"))
            .spawn(move || {
                let _ = reply.send(work());
            });
        if let Err(failure) = started {
            return Frame::error(format!("ERR cannot start {name}: {failure}"));
        }
        answer
            .recv_async()
            .await
            .unwrap_or_else(|_| Frame::error(format!("ERR {name} ended without an answer")))
    }))
}

/// `GROUP LEAVE`: asks the group to remove this member and waits (bounded by
/// [`LEAVE_WAIT`]) until the removal is committed.
fn leave(member: Arc<Member>) -> Reply {
    on_thread("leave", move || {
        match member.group().leave(LEAVE_WAIT) {
        MemberState::Offline => Frame::ok(),
        state => Frame::error(format!(
            "ERR not removed within {LEAVE_WAIT:?}: this member is {} (the last member of a group cannot leave it; a member without a majority cannot either)",
            tutti_engine::group::state_name(state)
        )),
    }
    })
}

/// `GROUP SET-PRIMARY` and `GROUP SWITCH-MODE`: ordered, then `+OK` once applied here, or
/// the reason every member refused it.
fn role_op(member: &Arc<Member>, op: RoleOp) -> Reply {
    let member = Arc::clone(member);
    on_thread("role-op", move || match member.role_op(op, ROLE_OP_WAIT) {
        Ok(_) => Frame::ok(),
        Err(failure) => Frame::error(format!("ERR {failure}")),
    })
}

/// A member UUID argument.
fn member_arg(arg: &[u8]) -> Result<MemberId, Frame> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(parse_uuid)
        .map(MemberId)
        .ok_or_else(|| {
            Frame::error(format!(
                "ERR '{}' is not a member UUID (GROUP MEMBERS lists them)",
                String::from_utf8_lossy(&arg[..arg.len().min(64)])
            ))
        })
}

/// `SWITCH-MODE SINGLE [uuid]` or `SWITCH-MODE MULTI`.
fn switch_mode(args: &[Bytes]) -> Result<RoleOp, Frame> {
    let mode = String::from_utf8_lossy(&args[2]).to_ascii_uppercase();
    match (mode.as_str(), args.get(3)) {
        ("SINGLE", None) => Ok(RoleOp::SwitchToSingle(None)),
        ("SINGLE", Some(uuid)) => member_arg(uuid).map(|id| RoleOp::SwitchToSingle(Some(id))),
        ("MULTI", None) => Ok(RoleOp::SwitchToMulti),
        _ => Err(Frame::error(
            "ERR GROUP SWITCH-MODE takes SINGLE [uuid] or MULTI",
        )),
    }
}

/// The group's status as MySQL Shell's `cluster.status()` shows it: one document with
/// the group, its mode, every member, and whether it tolerates failures.
pub(crate) fn status_json(member: &Member) -> serde_json::Value {
    let group = member.group();
    let rows = member.members();
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
        "topologyMode": member.mode_name(),
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

//! The admin and diagnostic commands: HELLO and GROUP (members, connections, stats,
//! member stats, raw proposals, log digests). One implementation of each table serves
//! every face.

use std::sync::Arc;

use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;
use tutti_engine::group::{ConnectionRow, GroupHandle, MemberRow};
use tutti_engine::member::Member;
use tutti_engine::txn::{encode_message, EngineMessage};

use super::{bulk, error, Reply};

pub(super) fn hello(args: &[Bytes], group: &GroupHandle) -> BytesFrame {
    match args.get(1).map(|version| &version[..]) {
        None | Some(b"2") => {}
        Some(b"3") => return error("NOPROTO sorry, this server speaks RESP2 only"),
        Some(_) => return error("NOPROTO unsupported protocol version"),
    }
    let facts: [(&str, BytesFrame); 7] = [
        ("server", bulk("tutti")),
        ("version", bulk(env!("CARGO_PKG_VERSION"))),
        ("proto", BytesFrame::Integer(2)),
        (
            "id",
            bulk(tutti_engine::group::format_uuid(group.member_id())),
        ),
        ("mode", bulk("group")),
        ("role", bulk("master")),
        ("modules", BytesFrame::Array(Vec::new())),
    ];
    BytesFrame::Array(
        facts
            .into_iter()
            .flat_map(|(name, value)| [bulk(name), value])
            .collect(),
    )
}

fn table(columns: &[&'static str], rows: impl Iterator<Item = Vec<String>>) -> BytesFrame {
    BytesFrame::Array(
        rows.map(|values| {
            BytesFrame::Array(
                columns
                    .iter()
                    .zip(values)
                    .flat_map(|(column, value)| [bulk(*column), bulk(value)])
                    .collect(),
            )
        })
        .collect(),
    )
}

pub(super) fn group_command(args: &[Bytes], member: &Member) -> Reply {
    let group = member.group();
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_uppercase();
    let frame = match (sub.as_str(), args.len()) {
        ("MEMBERS", 2) => table(&MemberRow::COLUMNS, group.members().iter().map(|row| row.values().to_vec())),
        ("CONNECTIONS", 2) => table(&ConnectionRow::COLUMNS, group.connections().iter().map(|row| row.values().to_vec())),
        ("STATS", 2) => stats(group),
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
                Err(failure) => Reply::Now(error(format!("ERR {failure}"))),
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
            None => error("ERR seqno must be a non-negative integer"),
            Some(seqno) => match group.digest_at(seqno) {
                Some(digest) => digest_reply(seqno, digest),
                None => error(format!(
                    "ERR seqno {seqno} is not delivered here (last delivered {}) or no longer kept",
                    group.last_digest().0
                )),
            },
        },
        _ => error(format!(
            "ERR unknown GROUP subcommand or wrong arguments '{sub}': use MEMBERS, CONNECTIONS, STATS, MEMBER-STATS, STORE-DIGEST, PROPOSE <bytes> or LOG-DIGEST [seqno]"
        )),
    };
    Reply::Now(frame)
}

fn digest_reply(seqno: u64, digest: u64) -> BytesFrame {
    BytesFrame::Array(vec![
        BytesFrame::Integer(i64::try_from(seqno).unwrap_or(i64::MAX)),
        bulk(format!("{digest:016x}")),
    ])
}

fn stats(group: &GroupHandle) -> BytesFrame {
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
    BytesFrame::Array(
        pairs
            .into_iter()
            .flat_map(|(name, value)| [bulk(name), bulk(value)])
            .collect(),
    )
}

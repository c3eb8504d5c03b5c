//! Multi-primary mode end to end, on real `tutti server` processes: every member accepts
//! writes; blind writes never abort; a hot key written through one member chains instead
//! of aborting; through three members the conflicts are certification aborts, retried,
//! and no increment is lost.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redis_protocol::resp2::types::OwnedFrame;
use support::Group;
use tutti::client::frame_text;

const KEYS: usize = 8;

fn member_stat(group: &Group, index: usize, column: &str) -> u64 {
    let rows = group.members[index]
        .client()
        .table(&[b"GROUP", b"MEMBER-STATS"])
        .expect("member stats");
    rows.first()
        .and_then(|row| row.iter().find(|(name, _)| name == column))
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or_else(|| panic!("column {column} in {rows:?}"))
}

#[test]
fn blind_writes_from_every_member_never_abort_and_every_member_ends_with_the_last_ordered() {
    let group = Group::start_all(3, &["--log-sync", "none"]);
    let writers: Vec<_> = (0..6)
        .map(|writer| {
            let addr = group.members[writer % 3].client.to_string();
            std::thread::spawn(move || {
                let mut client = tutti::client::RespClient::connect(&addr, support::CLIENT_TIMEOUT)
                    .expect("connect");
                for round in 0..150 {
                    let key = format!("key-{}", round % KEYS);
                    let value = format!("writer-{writer}-round-{round}");
                    let reply = client
                        .command(&[b"SET", key.as_bytes(), value.as_bytes()])
                        .unwrap_or_else(|error| panic!("SET {key} from writer {writer}: {error}"));
                    assert_eq!(frame_text(&reply), "OK", "a blind write never aborts");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer");
    }
    group.wait_same_store();
    let keys: Vec<Vec<u8>> = (0..KEYS)
        .map(|key| format!("key-{key}").into_bytes())
        .collect();
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(keys.iter().map(Vec::as_slice));
    let values: Vec<String> = group
        .members
        .iter()
        .map(|member| frame_text(&member.client().command(&mget).expect("MGET")))
        .collect();
    assert!(
        values.iter().all(|v| *v == values[0]),
        "members disagree: {values:?}"
    );
    assert!(values[0].contains("writer-"), "{values:?}");
    for index in 0..3 {
        assert_eq!(
            member_stat(&group, index, "COUNT_TRANSACTIONS_LOCAL_ROLLBACK"),
            0,
            "member {index} aborted a blind write"
        );
        assert_eq!(member_stat(&group, index, "COUNT_CONFLICTS_DETECTED"), 0);
    }
}

/// `clients` threads each send `per_client` INCRs of one key to the given members;
/// returns (successful replies, CONFLICT replies).
fn hot_key(group: &Group, members: &[usize], clients: usize, per_client: u64) -> (u64, u64) {
    let committed = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let addr = group.members[members[client % members.len()]]
                .client
                .to_string();
            let (committed, conflicts) = (Arc::clone(&committed), Arc::clone(&conflicts));
            std::thread::spawn(move || {
                let mut resp = tutti::client::RespClient::connect(&addr, support::CLIENT_TIMEOUT)
                    .expect("connect");
                for _ in 0..per_client {
                    match resp.command(&[b"INCR", b"hot"]) {
                        Ok(OwnedFrame::Integer(_)) => {
                            committed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(tutti::client::ClientError::Server { message, .. })
                            if message.starts_with("CONFLICT") =>
                        {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("INCR through {addr}: {other:?}"),
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client");
    }
    (
        committed.load(Ordering::Relaxed),
        conflicts.load(Ordering::Relaxed),
    )
}

fn counter_everywhere(group: &Group) -> Vec<String> {
    group
        .members
        .iter()
        .map(|member| frame_text(&member.client().command(&[b"GET", b"hot"]).expect("GET")))
        .collect()
}

#[test]
fn a_hot_key_through_one_member_chains_loses_no_increment_and_aborts_none() {
    let group = Group::start_all(3, &["--log-sync", "none"]);
    let (committed, conflicts) = hot_key(&group, &[0], 50, 40);
    assert_eq!((committed, conflicts), (2000, 0));
    group.wait_same_store();
    assert_eq!(counter_everywhere(&group), vec!["2000"; 3]);
    assert_eq!(
        member_stat(&group, 0, "COUNT_TRANSACTIONS_LOCAL_ROLLBACK"),
        0
    );
    assert_eq!(member_stat(&group, 0, "COUNT_CONFLICTS_DETECTED"), 0);
    assert!(member_stat(&group, 0, "COUNT_TRANSACTIONS_LOCAL_PROPOSED") >= 2000);
}

#[test]
fn a_hot_key_through_three_members_loses_no_increment_and_reports_its_aborts() {
    let group = Group::start_all(3, &["--log-sync", "none"]);
    let (committed, conflicts) = hot_key(&group, &[0, 1, 2], 51, 30);
    assert_eq!(committed + conflicts, 51 * 30);
    group.wait_same_store();
    assert_eq!(counter_everywhere(&group), vec![committed.to_string(); 3]);
    let detected: u64 = (0..3)
        .map(|index| member_stat(&group, index, "COUNT_CONFLICTS_DETECTED"))
        .sum();
    let rollbacks: u64 = (0..3)
        .map(|index| member_stat(&group, index, "COUNT_TRANSACTIONS_LOCAL_ROLLBACK"))
        .sum();
    eprintln!(
        "three members: {committed} committed, {conflicts} CONFLICT replies, {rollbacks} local rollbacks, {detected} conflicts detected (summed over members)"
    );
    // Every member certifies every transaction: each sees the same conflicts.
    assert_eq!(detected % 3, 0, "conflict counts differ between members");
    assert!(
        rollbacks > 0,
        "contention between members shows as certification aborts"
    );
}

//! Concurrent conflicting transfers through all three members of a multi-primary group,
//! with one member killed (-9) and restarted mid-run: the bank's total is conserved on
//! every member and every member ends with the same store.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis_protocol::resp2::types::OwnedFrame;
use support::Group;
use tutti::client::{frame_text, ClientError, RespClient};

const ACCOUNTS: u64 = 10;
const INITIAL_BALANCE: i64 = 1000;

fn account(index: u64) -> Vec<u8> {
    format!("account-{index}").into_bytes()
}

/// One transfer as MULTI / DECRBY / INCRBY / EXEC; true when it committed.
fn transfer(client: &mut RespClient, from: u64, to: u64, amount: i64) -> Result<bool, ClientError> {
    let amount = amount.to_string();
    let (from, to) = (account(from), account(to));
    client.send(&[
        &[b"MULTI"],
        &[b"DECRBY", &from, amount.as_bytes()],
        &[b"INCRBY", &to, amount.as_bytes()],
        &[b"EXEC"],
    ])?;
    for _ in 0..3 {
        client.read_reply()?;
    }
    match client.read_reply() {
        Ok(OwnedFrame::Array(replies)) => {
            assert_eq!(replies.len(), 2, "EXEC runs both commands");
            Ok(true)
        }
        Ok(OwnedFrame::Error(message)) if message.starts_with("CONFLICT") => Ok(false),
        // A member that lost the group answers that the outcome is unknown.
        Ok(OwnedFrame::Error(message)) if message.contains("outcome unknown") => Ok(false),
        Err(error) => Err(error),
        Ok(other) => panic!("EXEC replied {other:?}"),
    }
}

fn total(client: &mut RespClient) -> i64 {
    let keys: Vec<Vec<u8>> = (0..ACCOUNTS).map(account).collect();
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(keys.iter().map(Vec::as_slice));
    let OwnedFrame::Array(values) = client.command(&mget).expect("MGET") else {
        panic!("MGET returns an array");
    };
    values
        .iter()
        .map(|value| frame_text(value).parse::<i64>().expect("a balance"))
        .sum()
}

#[test]
fn transfers_on_every_member_conserve_the_total_across_a_kill_and_restart() {
    let mut group = Group::start_all(3, &["--member-expel-timeout", "60s"]);
    let mut setup = group.members[0].client();
    for index in 0..ACCOUNTS {
        let balance = INITIAL_BALANCE.to_string();
        setup
            .command(&[b"SET", &account(index), balance.as_bytes()])
            .expect("SET");
    }
    let expected = INITIAL_BALANCE * i64::try_from(ACCOUNTS).expect("small");
    assert_eq!(total(&mut setup), expected);

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let conflicted = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..9_u64)
        .map(|client| {
            let addr = group.members[(client % 3) as usize].client.to_string();
            let (stop, committed, conflicted) = (
                Arc::clone(&stop),
                Arc::clone(&committed),
                Arc::clone(&conflicted),
            );
            std::thread::spawn(move || {
                let mut state = client;
                let mut connection: Option<RespClient> = None;
                while !stop.load(Ordering::Relaxed) {
                    // A client of the killed member reconnects once it is back.
                    let Some(resp) = connection.as_mut() else {
                        connection = RespClient::connect(&addr, support::CLIENT_TIMEOUT).ok();
                        if connection.is_none() {
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        continue;
                    };
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let from = (state >> 33) % ACCOUNTS;
                    let to = (from + 1 + (state >> 40) % (ACCOUNTS - 1)) % ACCOUNTS;
                    match transfer(
                        resp,
                        from,
                        to,
                        1 + i64::try_from((state >> 50) % 10).expect("small"),
                    ) {
                        Ok(true) => {
                            committed.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(false) => {
                            conflicted.fetch_add(1, Ordering::Relaxed);
                        }
                        // The member was killed, or its outcome is unknown: either way the
                        // total must hold; reconnect and go on.
                        Err(_) => connection = None,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    group.members[2].kill9();
    std::thread::sleep(Duration::from_secs(3));
    group.members[2].start();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client");
    }
    group.wait_all_online();
    let (committed, conflicted) = (
        committed.load(Ordering::Relaxed),
        conflicted.load(Ordering::Relaxed),
    );
    eprintln!("{committed} transfers committed, {conflicted} ended in CONFLICT");
    assert!(committed > 50, "the transfers made progress: {committed}");

    let digest = group.wait_same_store();
    for member in &group.members {
        assert_eq!(
            total(&mut member.client()),
            expected,
            "member {} total",
            member.index
        );
    }
    eprintln!("every member's store digest: {digest}");
}

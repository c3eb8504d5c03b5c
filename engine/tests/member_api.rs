//! The embedding API on a real one-member group (loopback TCP, a temporary data
//! directory): interactive transactions with exact outcomes, the early conflict check,
//! isolation levels, the size limit, read-only transactions, and command-style
//! transactions that chain to local in-flight writes.

use std::time::{Duration, Instant};

use tutti_engine::certifier::{Isolation, KeyHash};
use tutti_engine::group::GroupOptions;
use tutti_engine::member::{Member, MemberOptions, TxnError};
use tutti_net::gcs::MemberState;
use tutti_storage::log::SyncPolicy;
use tutti_storage::store::Value;

fn one_member(dir: &tempfile::TempDir, adjust: impl FnOnce(&mut MemberOptions)) -> Member {
    let ports = tutti_net::transport::free_loopback_addrs(2).expect("two free ports");
    let mut group = GroupOptions::new(0xfeed, dir.path().join("member"), ports[0], ports[1]);
    group.bootstrap = true;
    group.log_sync = SyncPolicy::None;
    let mut options = MemberOptions::new(group);
    adjust(&mut options);
    let member = Member::start(options).expect("the member starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while member.group().stats().state != Some(MemberState::Online) {
        assert!(Instant::now() < deadline, "the member never went ONLINE");
        std::thread::sleep(Duration::from_millis(10));
    }
    member
}

fn value(text: &str) -> Value {
    Value::from(text.as_bytes())
}

#[test]
fn interactive_transactions_commit_read_their_writes_and_conflicts_name_the_winner() {
    let dir = tempfile::tempdir().expect("temp dir");
    let member = one_member(&dir, |_| {});
    let mut first = member.begin(Isolation::Snapshot);
    assert_eq!(first.get(b"k"), None);
    first.put(b"k", value("1"));
    assert_eq!(
        first.get(b"k"),
        Some(value("1")),
        "a transaction reads its own write"
    );
    let mut second = member.begin(Isolation::Snapshot);
    second.put(b"k", value("2"));
    let won = first.commit_blocking().expect("the first committer wins");
    assert!(
        member.watermark() >= won,
        "commit returns once the write is readable"
    );
    assert_eq!(
        member.store().get(b"k", member.watermark()),
        Some(value("1"))
    );
    let proposed_before = member.stats().count_transactions_local_proposed;
    assert_eq!(
        second.commit_blocking(),
        Err(TxnError::Conflict {
            key: KeyHash::of(b"k"),
            winner: won
        })
    );
    assert_eq!(
        member.stats().count_transactions_local_proposed,
        proposed_before,
        "the early check refused it without proposing"
    );
    let reader = member.begin(Isolation::Snapshot);
    assert_eq!(
        reader.commit_blocking(),
        Ok(member.watermark()),
        "read-only: no proposal"
    );
    assert_eq!(
        member.stats().count_transactions_local_proposed,
        proposed_before
    );
    member.shutdown(None).expect("stops");
}

#[test]
fn serializable_checks_reads_and_never_blind_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let member = one_member(&dir, |_| {});
    let mut blind = member.begin(Isolation::Serializable);
    let mut reader = member.begin(Isolation::Serializable);
    let mut other_blind = member.begin(Isolation::Serializable);
    blind.put(b"a", value("x"));
    other_blind.put(b"a", value("y"));
    let _ = reader.get(b"a");
    reader.put(b"b", value("z"));
    blind.commit_blocking().expect("a blind write commits");
    other_blind
        .commit_blocking()
        .expect("another blind write of the same key commits too");
    assert!(matches!(
        reader.commit_blocking(),
        Err(TxnError::Conflict { key, .. }) if key == KeyHash::of(b"a")
    ));
    assert_eq!(
        member.store().get(b"a", member.watermark()),
        Some(value("y"))
    );
    member.shutdown(None).expect("stops");
}

#[test]
fn an_oversized_transaction_is_refused_before_it_is_proposed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let member = one_member(&dir, |options| options.transaction_size_limit = 1000);
    let mut big = member.begin(Isolation::Snapshot);
    big.put(b"big", Value::from(vec![7_u8; 2000]));
    assert_eq!(
        big.commit_blocking(),
        Err(TxnError::TooLarge {
            bytes: 2003,
            limit: 1000
        })
    );
    let refused = member.execute_blocking(|txn| txn.put(b"big", Value::from(vec![7_u8; 2000])));
    assert!(matches!(refused, Err(TxnError::TooLarge { .. })));
    assert_eq!(member.stats().count_transactions_local_proposed, 0);
    member.shutdown(None).expect("stops");
}

#[test]
fn commands_chain_to_in_flight_writes_and_lose_no_increment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let member = one_member(&dir, |_| {});
    let increments = 200;
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..increments {
                    member
                        .execute_blocking(|txn| {
                            let now = txn.get(b"counter").map_or(0, |v| {
                                std::str::from_utf8(&v).unwrap().parse::<u64>().unwrap()
                            });
                            txn.put(b"counter", Value::from((now + 1).to_string().as_bytes()));
                        })
                        .expect("a local conflict never aborts");
                }
            });
        }
    });
    assert_eq!(
        member.store().get(b"counter", member.watermark()),
        Some(value(&(8 * increments).to_string()))
    );
    let stats = member.stats();
    assert_eq!(stats.count_transactions_local_rollback, 0);
    assert_eq!(stats.count_conflicts_detected, 0);
    assert_eq!(stats.count_transactions_local_proposed, 8 * increments);
    member.shutdown(None).expect("stops");
}

#[test]
fn without_chaining_the_same_commands_abort_and_retry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let member = one_member(&dir, |options| {
        options.chaining = false;
        options.autocommit_retries = 1000;
    });
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..20 {
                    member
                        .execute_blocking(|txn| {
                            let now = txn.get(b"counter").map_or(0, |v| {
                                std::str::from_utf8(&v).unwrap().parse::<u64>().unwrap()
                            });
                            txn.put(b"counter", Value::from((now + 1).to_string().as_bytes()));
                        })
                        .expect("retried until it commits");
                }
            });
        }
    });
    assert_eq!(
        member.store().get(b"counter", member.watermark()),
        Some(value("160"))
    );
    assert!(
        member.stats().count_transactions_local_rollback > 0,
        "local conflicts abort without chaining"
    );
    member.shutdown(None).expect("stops");
}

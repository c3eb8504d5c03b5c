//! The group core in process: two members on loopback (epoll), one bootstrapping and one
//! joining through it as seed, propose through the `GroupHandle`, deliver to a
//! `ChannelSink`, agree on digests, and the joiner leaves voluntarily.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tutti_engine::group::{self, ChannelSink, GroupHandle, GroupOptions};
use tutti_net::gcs::{EntryBody, MemberState};
use tutti_net::transport::IoBackend;

const WAIT: Duration = Duration::from_secs(20);

fn options(dir: &std::path::Path, group_name: u128) -> GroupOptions {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut options = GroupOptions::new(
        group_name,
        dir.to_path_buf(),
        loopback,
        SocketAddr::from(([127, 0, 0, 1], 6379)),
    );
    options.io_backend = IoBackend::Epoll;
    options
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn online(handle: &GroupHandle, members: usize) -> bool {
    let rows = handle.members();
    rows.len() == members
        && rows
            .iter()
            .all(|row| row.member_state == MemberState::Online)
}

#[test]
fn two_members_order_deliver_and_one_leaves() {
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let group_name = 0x1234_5678_9abc_def0_1234_5678_9abc_def0;
    let mut first = options(dirs[0].path(), group_name);
    first.bootstrap = true;
    let (sink, deliveries) = ChannelSink::new(1024);
    let a = group::start(first, Box::new(sink)).expect("first member starts");
    let mut second = options(dirs[1].path(), group_name);
    second.seeds = vec![a.peer_addr().expect("listening")];
    let b = group::start(second, Box::new(group::DiscardSink)).expect("second member starts");
    wait_until("both members show two members ONLINE", || {
        online(&a, 2) && online(&b, 2)
    });

    let seqno = b
        .propose(b"hello from the joiner")
        .expect("ordered and delivered");
    let found = std::iter::from_fn(|| deliveries.recv_timeout(WAIT).ok())
        .find(|delivered| delivered.seqno == seqno);
    let entry = found
        .expect("the first member delivered the proposal")
        .entry;
    match entry.body {
        EntryBody::Proposal(proposal) => {
            assert_eq!(&proposal.payload[..], b"hello from the joiner");
        }
        other => panic!("seqno {seqno} holds {other:?}"),
    }
    wait_until("both delivered it", || {
        a.last_digest().0 >= seqno && b.last_digest().0 >= seqno
    });
    assert_eq!(a.digest_at(seqno), b.digest_at(seqno));
    assert!(a.stats().log_appends > 0);
    assert_eq!(b.connections().len(), 1, "one peer connection");

    assert_eq!(b.leave(WAIT), MemberState::Offline);
    wait_until("the first member shows itself alone", || online(&a, 1));
    b.shutdown().expect("clean stop");
    a.shutdown().expect("clean stop");
}

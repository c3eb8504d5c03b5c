//! Members exchange many frames both ways over real sockets on 127.0.0.1: order per peer
//! is kept, frames are batched into fewer writes than frames, stats add up, and both io
//! backends work (or `uring` fails with the explicit error where io_uring is blocked).

mod transport_support;

use std::time::Duration;

use transport_support::{
    assert_in_order, config, loopback, test_frame, wait_until, Member, StartError, HEARTBEAT_KIND,
    TEST_KIND,
};
use tutti_net::transport::{
    probe_uring, ConnectionState, HandoffError, IoBackend, PeerId, RuntimeError,
};

const FRAMES: u64 = 20_000;
const BODY_BYTES: usize = 100;
const LIMIT: Duration = Duration::from_secs(30);

fn seqs(member: &Member, from: &Member) -> Vec<u64> {
    let received = member.received.lock().expect("received lock");
    received
        .from(from.id)
        .into_iter()
        .map(|(_, seq)| seq)
        .collect()
}

fn two_members_exchange_in_order(backend: IoBackend) {
    let a = Member::start(config(1, 1, loopback()), backend).expect("member 1 starts");
    let b = Member::start(config(2, 1, loopback()), backend).expect("member 2 starts");
    assert_eq!(a.snapshot().io_backend, backend);
    a.add_peer(&b);
    b.add_peer(&a);
    // Frames queued before the connection is up wait in the peer queue and go out once
    // the handshake completes.
    a.send(b.id, 0, FRAMES, BODY_BYTES);
    b.send(a.id, 0, FRAMES, BODY_BYTES);
    wait_until("every frame arrived both ways", LIMIT, || {
        seqs(&a, &b).len() as u64 == FRAMES && seqs(&b, &a).len() as u64 == FRAMES
    });
    assert_in_order(&seqs(&a, &b), 0, FRAMES);
    assert_in_order(&seqs(&b, &a), 0, FRAMES);

    let frame_bytes = (64 + BODY_BYTES) as u64;
    for (member, peer) in [(&a, &b), (&b, &a)] {
        wait_until("the sender counted its writes", LIMIT, || {
            member
                .peer_stats(peer.id)
                .is_some_and(|row| row.messages_sent == FRAMES)
        });
        let stats = member.peer_stats(peer.id).expect("peer row");
        assert_eq!(stats.state, ConnectionState::Connected);
        assert_eq!(stats.messages_sent, FRAMES);
        assert_eq!(stats.bytes_sent, FRAMES * frame_bytes);
        assert_eq!(stats.messages_received, FRAMES);
        assert_eq!(stats.bytes_received, FRAMES * frame_bytes);
        assert_eq!(stats.message_bytes_min, Some(frame_bytes));
        assert_eq!(stats.message_bytes_max, Some(frame_bytes));
        assert_eq!(stats.messages_dropped, 0);
        assert_eq!(stats.connects, 1);
        assert_eq!(stats.remote_incarnation, Some(1));
        assert!(
            stats.write_calls * 10 < stats.messages_sent,
            "frames are batched: {} writes for {} frames",
            stats.write_calls,
            stats.messages_sent
        );
    }
    a.stop();
    b.stop();
}

#[test]
fn two_members_exchange_in_order_on_epoll() {
    two_members_exchange_in_order(IoBackend::Epoll);
}

#[test]
fn two_members_exchange_in_order_on_uring_or_refuse_clearly() {
    let probe = probe_uring();
    eprintln!("io_uring probe on this machine: {probe:?}");
    match probe {
        Ok(()) => two_members_exchange_in_order(IoBackend::Uring),
        Err(reason) => {
            let started = Member::start(config(1, 1, loopback()), IoBackend::Uring);
            let Err(StartError::Runtime(error)) = started else {
                panic!("uring must be refused where the probe failed ({reason})");
            };
            assert!(matches!(error, RuntimeError::UringUnavailable { .. }));
            let text = error.to_string();
            assert!(text.contains("io_backend = \"epoll\""), "{text}");
            assert!(text.contains("kernel.io_uring_disabled"), "{text}");
        }
    }
}

#[test]
fn three_members_exchange_through_handles_and_count_heartbeats() {
    let members: Vec<Member> = (1..=3)
        .map(|id| Member::start(config(id, 1, loopback()), IoBackend::Auto).expect("member starts"))
        .collect();
    for member in &members {
        for other in &members {
            if member.id != other.id {
                member.add_peer(other);
            }
        }
    }
    wait_until("every member knows the others", LIMIT, || {
        members
            .iter()
            .all(|member| member.snapshot().peers.len() == 2)
    });
    // Every member sends to every other from the test thread, through the cross-thread
    // hand-over, with a heartbeat after every tenth frame.
    let per_peer = 2_000u64;
    for member in &members {
        for other in members.iter().filter(|other| other.id != member.id) {
            for seq in 0..per_peer {
                let kind = if seq % 10 == 9 {
                    HEARTBEAT_KIND
                } else {
                    TEST_KIND
                };
                let frame = test_frame(member.origin(), kind, seq, 32);
                let mut handed = member.handle.send(other.id, frame.clone());
                while handed.is_err() {
                    std::thread::sleep(Duration::from_millis(1));
                    handed = member.handle.send(other.id, frame.clone());
                }
            }
        }
    }
    wait_until("every member heard every other", LIMIT, || {
        members.iter().all(|member| {
            members
                .iter()
                .filter(|other| other.id != member.id)
                .all(|other| seqs(member, other).len() as u64 == per_peer)
        })
    });
    for member in &members {
        for other in members.iter().filter(|other| other.id != member.id) {
            assert_in_order(&seqs(member, other), 0, per_peer);
            // The sender counts a batch once its write completes, which may be a moment
            // after the receiver already has it.
            wait_until("the sender counted its writes", LIMIT, || {
                other
                    .peer_stats(member.id)
                    .is_some_and(|row| row.messages_sent == per_peer)
            });
            let received = member.peer_stats(other.id).expect("peer row");
            let sent = other.peer_stats(member.id).expect("peer row");
            assert_eq!(received.heartbeats_received, per_peer / 10);
            assert_eq!(sent.heartbeats_sent, per_peer / 10);
        }
    }
    let handle = members[0].handle.clone();
    let frame = test_frame(members[0].origin(), TEST_KIND, 0, 8);
    for member in members {
        member.stop();
    }
    assert_eq!(
        handle.send(PeerId(2), frame),
        Err(HandoffError::Stopped),
        "a stopped transport refuses hand-overs"
    );
    assert_eq!(handle.snapshot().handoff_dropped, 1);
}

#[test]
fn large_frames_cross_intact_between_small_ones() {
    let a = Member::start(config(1, 1, loopback()), IoBackend::Auto).expect("member 1 starts");
    let b = Member::start(config(2, 1, loopback()), IoBackend::Auto).expect("member 2 starts");
    a.add_peer(&b);
    b.add_peer(&a);
    let large = 3 * 1024 * 1024;
    a.send(b.id, 0, 10, 16);
    a.send(b.id, 10, 4, large);
    a.send(b.id, 14, 10, 16);
    wait_until("every frame arrived", LIMIT, || seqs(&b, &a).len() == 24);
    assert_in_order(&seqs(&b, &a), 0, 24);
    let row = b.peer_stats(a.id).expect("peer row");
    assert_eq!(row.message_bytes_max, Some(64 + large as u64));
    assert_eq!(row.message_bytes_min, Some(64 + 16));
    a.stop();
    b.stop();
}

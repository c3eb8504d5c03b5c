//! The transport under faults, over real sockets on 127.0.0.1: a peer restarts, strangers
//! send garbage or a handshake from another group, a peer stops reading or is dead, and
//! a second member tries to bind a port already in use.

mod transport_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use transport_support::{config, loopback, wait_until, Member, StartError, GROUP};
use tutti_net::transport::handshake::{HELLO_KIND, WELCOME_KIND};
use tutti_net::transport::{ConnectionState, IoBackend, PeerId, TransportError};
use tutti_net::wire::{encode_frame, FrameOrigin};

const LIMIT: Duration = Duration::from_secs(20);

fn seqs_from(member: &Member, peer: PeerId, incarnation: u64) -> Vec<u64> {
    let received = member.received.lock().expect("received lock");
    received
        .from(peer)
        .into_iter()
        .filter(|(from_incarnation, _)| *from_incarnation == incarnation)
        .map(|(_, seq)| seq)
        .collect()
}

/// A handshake frame built from the layout documented in `transport::handshake`.
fn handshake_frame(kind: u16, origin: FrameOrigin, target: PeerId, listen: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(listen) = listen else {
        panic!("tests listen on IPv4");
    };
    let mut out = Vec::new();
    encode_frame(&mut out, kind, origin, |body| {
        body.extend_from_slice(&target.0.to_le_bytes());
        body.push(4);
        body.push(0);
        body.extend_from_slice(&listen.port().to_le_bytes());
        body.extend_from_slice(&u128::from(listen.ip().to_bits()).to_le_bytes());
    })
    .expect("a handshake is small");
    out
}

/// Connects a raw socket to `addr`, bounded in time.
fn raw_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, LIMIT).expect("raw connect");
    stream.set_read_timeout(Some(LIMIT)).expect("read timeout");
    stream
}

/// Reads until the other side closes the connection; panics if it stays open.
fn assert_closed_by_peer(stream: &mut TcpStream) {
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(error) => panic!("the member did not close the connection: {error}"),
        }
    }
}

fn connected_pair() -> (Member, Member) {
    let a = Member::start(config(1, 1, loopback()), IoBackend::Auto).expect("member 1 starts");
    let b = Member::start(config(2, 1, loopback()), IoBackend::Auto).expect("member 2 starts");
    a.add_peer(&b);
    b.add_peer(&a);
    wait_until("1 and 2 are connected", LIMIT, || {
        a.peer_stats(b.id)
            .is_some_and(|row| row.state == ConnectionState::Connected)
            && b.peer_stats(a.id)
                .is_some_and(|row| row.state == ConnectionState::Connected)
    });
    (a, b)
}

#[test]
fn restarted_peer_is_redialed_with_backoff_and_traffic_resumes() {
    let (a, b) = connected_pair();
    a.send(b.id, 0, 100, 40);
    wait_until("the first frames arrived", LIMIT, || {
        seqs_from(&b, a.id, 1).len() == 100
    });

    let b_addr = b.listen_addr;
    b.stop();
    wait_until("1 sees 2 go down and retries", LIMIT, || {
        a.peer_stats(PeerId(2)).is_some_and(|row| {
            row.disconnects == 1
                && row.state != ConnectionState::Connected
                && row
                    .last_error
                    .is_some_and(|error| error.text.contains(&b_addr.to_string()))
        })
    });

    // The same member restarts on the same port with the next incarnation.
    let b = Member::start(config(2, 2, b_addr), IoBackend::Auto).expect("member 2 restarts");
    b.add_peer(&a);
    wait_until("1 redialed 2", LIMIT, || {
        a.peer_stats(b.id).is_some_and(|row| {
            row.state == ConnectionState::Connected && row.remote_incarnation == Some(2)
        })
    });
    a.send(b.id, 100, 100, 40);
    b.send(a.id, 0, 100, 40);
    wait_until("traffic resumed both ways", LIMIT, || {
        seqs_from(&b, a.id, 1).len() == 100 && seqs_from(&a, b.id, 2).len() == 100
    });
    assert_eq!(seqs_from(&b, a.id, 1), (100..200).collect::<Vec<_>>());
    let row = a.peer_stats(b.id).expect("peer row");
    assert_eq!(row.connects, 2);
    assert_eq!(row.disconnects, 1);
    let received = a.received.lock().expect("received lock");
    assert_eq!(received.ups, vec![(b.id, 1), (b.id, 2)]);
    assert_eq!(received.downs, vec![(b.id, 1)]);
}

#[test]
fn garbage_on_the_peer_port_is_refused_and_others_keep_working() {
    let (a, b) = connected_pair();
    let mut stranger = raw_connect(b.listen_addr);
    let stranger_addr = stranger.local_addr().expect("local address");
    stranger
        .write_all(b"GET / HTTP/1.1\r\nHost: tutti\r\n\r\n")
        .expect("garbage sent");
    assert_closed_by_peer(&mut stranger);
    wait_until("2 recorded the refusal", LIMIT, || {
        b.snapshot().recent_rejections.iter().any(|rejection| {
            rejection.remote == stranger_addr && rejection.text.contains("bad frame magic")
        })
    });

    a.send(b.id, 0, 1_000, 64);
    wait_until("1 still reaches 2", LIMIT, || {
        seqs_from(&b, a.id, 1).len() == 1_000
    });
    assert_eq!(b.peer_stats(a.id).map(|row| row.connects), Some(1));
}

#[test]
fn handshake_from_another_group_is_refused() {
    let (a, b) = connected_pair();
    let mut stranger = raw_connect(b.listen_addr);
    let stranger_addr = stranger.local_addr().expect("local address");
    let other_group = FrameOrigin {
        group_name: GROUP ^ 1,
        sender: 9,
        incarnation: 1,
    };
    let hello = handshake_frame(HELLO_KIND, other_group, b.id, stranger_addr);
    stranger.write_all(&hello).expect("hello sent");
    assert_closed_by_peer(&mut stranger);
    wait_until("2 recorded the refusal", LIMIT, || {
        b.snapshot().recent_rejections.iter().any(|rejection| {
            rejection.remote == stranger_addr
                && rejection.claimed_peer == Some(PeerId(9))
                && rejection.text.contains("group")
        })
    });
    assert!(
        b.peer_stats(PeerId(9)).is_none(),
        "a refused member never enters the peer table"
    );
    a.send(b.id, 0, 10, 64);
    wait_until("1 still reaches 2", LIMIT, || {
        seqs_from(&b, a.id, 1).len() == 10
    });
}

#[test]
fn garbage_after_a_good_handshake_closes_only_that_peer() {
    let (a, b) = connected_pair();
    let mut peer = raw_member(b.listen_addr, 5, 1, b.id);
    let local = peer.local_addr().expect("local address");
    let origin = FrameOrigin {
        group_name: GROUP,
        sender: 5,
        incarnation: 1,
    };
    let mut damaged = Vec::new();
    encode_frame(&mut damaged, 7, origin, |body| {
        body.extend_from_slice(&[1; 32]);
    })
    .expect("frame encodes");
    damaged[70] ^= 0xFF;
    peer.write_all(&damaged).expect("damaged frame sent");
    assert_closed_by_peer(&mut peer);
    wait_until("2 recorded the error against member 5", LIMIT, || {
        b.peer_stats(PeerId(5)).is_some_and(|row| {
            row.state != ConnectionState::Connected
                && row.last_error.is_some_and(|error| {
                    error.text.contains("checksum") && error.text.contains(&local.to_string())
                })
        })
    });
    a.send(b.id, 0, 10, 64);
    wait_until("1 still reaches 2", LIMIT, || {
        seqs_from(&b, a.id, 1).len() == 10
    });
}

#[test]
fn queues_of_a_stalled_and_of_a_dead_peer_stay_bounded() {
    const QUEUE_BYTES: usize = 1024 * 1024;
    const FRAMES: u64 = 10_000;
    const BODY: usize = 1_000;
    let frame_bytes = 64 + BODY as u64;
    let mut member_config = config(1, 1, loopback());
    member_config.peer_queue_bytes_max = QUEUE_BYTES;
    member_config.socket_send_buffer_bytes = 64 * 1024;
    member_config.socket_recv_buffer_bytes = 64 * 1024;
    let a = Member::start(member_config, IoBackend::Auto).expect("member 1 starts");

    // Member 2 completes the handshake, then never reads.
    let stalled = TcpListener::bind(loopback()).expect("bind");
    let stalled_addr = stalled.local_addr().expect("address");
    a.add_peer_at(PeerId(2), stalled_addr);
    let (mut stalled_stream, _) = stalled.accept().expect("member 1 dials");
    stalled_stream
        .set_read_timeout(Some(LIMIT))
        .expect("read timeout");
    let mut hello = [0u8; 100];
    stalled_stream
        .read_exact(&mut hello)
        .expect("hello received");
    let origin = FrameOrigin {
        group_name: GROUP,
        sender: 2,
        incarnation: 1,
    };
    stalled_stream
        .write_all(&handshake_frame(
            WELCOME_KIND,
            origin,
            PeerId(1),
            stalled_addr,
        ))
        .expect("welcome sent");

    // Member 3's address has nobody listening.
    let dead_addr = TcpListener::bind(loopback())
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    a.add_peer_at(PeerId(3), dead_addr);

    wait_until("1 is connected to 2", LIMIT, || {
        a.peer_stats(PeerId(2))
            .is_some_and(|row| row.state == ConnectionState::Connected)
    });
    a.send(PeerId(2), 0, FRAMES, BODY);
    a.send(PeerId(3), 0, FRAMES, BODY);
    for peer in [PeerId(2), PeerId(3)] {
        wait_until("every frame is sent, queued or dropped", LIMIT, || {
            a.peer_stats(peer).is_some_and(|row| {
                row.bytes_sent + row.bytes_dropped + row.queued_bytes == FRAMES * frame_bytes
            })
        });
        let row = a.peer_stats(peer).expect("peer row");
        assert!(row.queued_bytes <= QUEUE_BYTES as u64, "{row:?}");
        assert!(row.messages_dropped > FRAMES / 2, "{row:?}");
        assert_eq!(row.bytes_dropped, row.messages_dropped * frame_bytes);
    }
    wait_until("the dial error names the dead address", LIMIT, || {
        a.peer_stats(PeerId(3)).is_some_and(|row| {
            row.last_error
                .is_some_and(|error| error.text.contains(&dead_addr.to_string()))
        })
    });
    let dead = a.peer_stats(PeerId(3)).expect("peer row");
    assert_ne!(dead.state, ConnectionState::Connected);
    assert_eq!(dead.messages_sent, 0);
    assert_eq!(dead.connects, 0);
    drop(stalled_stream);
    a.stop();
}

#[test]
fn binding_a_peer_port_in_use_names_the_address() {
    let a = Member::start(config(1, 1, loopback()), IoBackend::Auto).expect("member 1 starts");
    let taken = a.listen_addr;
    let Err(StartError::Transport(error)) = Member::start(config(2, 1, taken), IoBackend::Auto)
    else {
        panic!("a second member must not bind {taken}");
    };
    assert!(matches!(&error, TransportError::Bind { addr, .. } if *addr == taken));
    let text = error.to_string();
    assert!(text.contains(&taken.to_string()), "{text}");
    assert!(text.contains("in use"), "{text}");
    a.stop();
}

/// Plays member `member` with `incarnation`: connects to `addr`, sends a Hello for
/// `target` and reads the Welcome.
fn raw_member(addr: SocketAddr, member: u128, incarnation: u64, target: PeerId) -> TcpStream {
    let mut stream = raw_connect(addr);
    let origin = FrameOrigin {
        group_name: GROUP,
        sender: member,
        incarnation,
    };
    let local = stream.local_addr().expect("local address");
    stream
        .write_all(&handshake_frame(HELLO_KIND, origin, target, local))
        .expect("hello sent");
    let mut welcome = [0u8; 100];
    stream.read_exact(&mut welcome).expect("welcome received");
    assert_eq!(u16::from_le_bytes([welcome[6], welcome[7]]), WELCOME_KIND);
    stream
}

#[test]
fn a_restarted_peer_replaces_its_half_open_connection_and_a_stale_one_is_refused() {
    let b = Member::start(config(2, 1, loopback()), IoBackend::Auto).expect("member 2 starts");
    let mut old = raw_member(b.listen_addr, 1, 1, b.id);
    wait_until("2 took member 1's connection", LIMIT, || {
        b.peer_stats(PeerId(1))
            .is_some_and(|row| row.state == ConnectionState::Connected)
    });

    // Member 1 restarts while its old connection still looks alive to member 2.
    let mut new = raw_member(b.listen_addr, 1, 2, b.id);
    assert_closed_by_peer(&mut old);
    wait_until(
        "the new incarnation replaced the old connection",
        LIMIT,
        || {
            b.peer_stats(PeerId(1)).is_some_and(|row| {
                row.remote_incarnation == Some(2)
                    && row.connects == 2
                    && row.state == ConnectionState::Connected
            })
        },
    );

    // A connection from the older incarnation is refused before any Welcome.
    let mut stale = raw_connect(b.listen_addr);
    let stale_origin = FrameOrigin {
        group_name: GROUP,
        sender: 1,
        incarnation: 1,
    };
    let local = stale.local_addr().expect("local address");
    stale
        .write_all(&handshake_frame(HELLO_KIND, stale_origin, b.id, local))
        .expect("hello sent");
    assert_closed_by_peer(&mut stale);
    wait_until("2 recorded the stale incarnation", LIMIT, || {
        b.snapshot()
            .recent_rejections
            .iter()
            .any(|rejection| rejection.remote == local && rejection.text.contains("older"))
    });

    // The new connection carries frames.
    let origin = FrameOrigin {
        group_name: GROUP,
        sender: 1,
        incarnation: 2,
    };
    new.write_all(&transport_support::test_frame(origin, 7, 41, 16))
        .expect("frame sent");
    wait_until("the frame arrived", LIMIT, || {
        seqs_from(&b, PeerId(1), 2) == vec![41]
    });
    let received = b.received.lock().expect("received lock");
    assert_eq!(received.ups, vec![(PeerId(1), 1), (PeerId(1), 2)]);
    assert!(
        received.downs.is_empty(),
        "a replaced connection is not reported down"
    );
}

#[test]
fn a_removed_peer_is_not_redialed_until_added_again() {
    let (a, b) = connected_pair();
    a.remove_peer(b.id);
    wait_until("2 sees 1 go away", LIMIT, || {
        b.peer_stats(a.id)
            .is_some_and(|row| row.disconnects == 1 && row.state == ConnectionState::Waiting)
    });
    assert!(a.peer_stats(b.id).is_none(), "the row leaves with the peer");
    // Longer than the largest backoff of the test configuration: no redial happens.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.peer_stats(a.id).map(|row| row.connects), Some(1));

    a.add_peer(&b);
    wait_until("1 dials 2 again", LIMIT, || {
        b.peer_stats(a.id)
            .is_some_and(|row| row.connects == 2 && row.state == ConnectionState::Connected)
    });
    a.send(b.id, 0, 10, 16);
    wait_until("frames flow again", LIMIT, || {
        seqs_from(&b, a.id, 1).len() == 10
    });
}

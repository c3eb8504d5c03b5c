//! Bad input never stops a member. Its peer port receiving garbage, or a handshake from
//! another group: it logs
//! a clear error, shows it in its connection table, and keeps serving.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{wait_until, Group, WAIT};
use tutti_net::transport::handshake::HELLO_KIND;
use tutti_net::wire::{encode_frame, FrameOrigin};

/// Sends `bytes` to `addr` and waits until the member closes the connection.
fn send_and_expect_close(addr: std::net::SocketAddr, bytes: &[u8]) {
    let mut stream = TcpStream::connect(addr).expect("peer port accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(bytes).expect("write");
    let mut sink = [0u8; 256];
    loop {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[test]
fn garbage_and_foreign_frames_are_refused_and_the_member_keeps_serving() {
    let group = Group::start_all(3, &[]);
    let target = &group.members[1];
    send_and_expect_close(
        target.peer,
        b"GET / HTTP/1.1\r\nHost: tutti\r\n\r\n and some more garbage bytes to fill a frame header",
    );
    let mut foreign = Vec::new();
    let origin = FrameOrigin {
        group_name: 0xDEAD_BEEF,
        sender: 42,
        incarnation: 1,
    };
    encode_frame(&mut foreign, HELLO_KIND, origin, |body| {
        body.extend_from_slice(&[0u8; 36]);
    })
    .expect("encode");
    send_and_expect_close(target.peer, &foreign);

    wait_until("both refusals are logged", WAIT, || {
        let log = target.log_text();
        log.contains("refused a peer connection")
            && log.contains("bad frame magic")
            && log.contains("check group_name")
    });
    let rows = target
        .client()
        .table(&[b"GROUP", b"CONNECTIONS"])
        .expect("connections table");
    let refused: Vec<_> = rows
        .iter()
        .filter(|row| {
            row.iter()
                .any(|(column, value)| column == "STATE" && value == "refused")
        })
        .collect();
    assert_eq!(
        refused.len(),
        2,
        "both refused connections are in the table: {rows:?}"
    );
    assert!(target.sees_online(3), "the group is intact");
    let seqno = target
        .client()
        .propose(b"still serving")
        .expect("delivered");
    wait_until("everyone delivers after the garbage", WAIT, || {
        group
            .members
            .iter()
            .all(|member| member.last_delivered().is_some_and(|last| last >= seqno))
    });
}

#[test]
fn client_port_garbage_gets_an_error_reply_and_the_member_keeps_serving() {
    let group = Group::start_all(1, &[]);
    let member = &group.members[0];
    let mut stream = TcpStream::connect(member.client).expect("client port accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // A line that does not start with '*' is an inline command (as in Redis), so the
    // garbage is a multibulk whose length is not a number.
    stream
        .write_all(b"*1\r\n$4\r\nPING\r\n*definitely not RESP\r\n")
        .expect("write");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.starts_with("+PONG\r\n-ERR Protocol error: invalid multibulk length"),
        "a reply, then an error, then close: {reply:?}"
    );
    let mut client = member.client();
    let unknown = client.command(&[b"FLY", b"away"]);
    assert!(
        matches!(unknown, Err(tutti::client::ClientError::Server { .. })),
        "{unknown:?}"
    );
    let wrong = client.command(&[b"GROUP", b"LOG-DIGEST", b"minus one"]);
    assert!(
        matches!(wrong, Err(tutti::client::ClientError::Server { .. })),
        "{wrong:?}"
    );
    let seqno = client.propose(b"after the garbage").expect("delivered");
    assert!(seqno > 0);
    assert!(
        member.log_text().contains("invalid multibulk length"),
        "the reason is logged"
    );
}

//! The data commands over RESP on a one-member group: each command a transaction,
//! MULTI/EXEC as one, and Redis's reply and error shapes.

mod support;

use redis_protocol::resp2::types::OwnedFrame;
use support::Group;
use tutti::client::{frame_text, ClientError, RespClient};

fn text(client: &mut RespClient, args: &[&[u8]]) -> String {
    match client.command(args) {
        Ok(reply) => frame_text(&reply),
        Err(ClientError::Server { message, .. }) => format!("error: {message}"),
        Err(other) => panic!("{args:?}: {other}"),
    }
}

fn int(value: i64) -> String {
    frame_text(&OwnedFrame::Integer(value))
}

#[test]
fn data_commands_reply_like_redis() {
    let group = Group::start_all(1, &["--log-sync", "none"]);
    let mut client = group.members[0].client();
    assert_eq!(
        text(&mut client, &[b"GET", b"a"]),
        frame_text(&OwnedFrame::Null)
    );
    assert_eq!(text(&mut client, &[b"SET", b"a", b"1"]), "OK");
    assert_eq!(text(&mut client, &[b"GET", b"a"]), "1");
    assert_eq!(text(&mut client, &[b"INCR", b"a"]), int(2));
    assert_eq!(text(&mut client, &[b"INCRBY", b"a", b"40"]), int(42));
    assert_eq!(text(&mut client, &[b"DECR", b"a"]), int(41));
    assert_eq!(text(&mut client, &[b"DECRBY", b"a", b"1"]), int(40));
    assert_eq!(text(&mut client, &[b"INCR", b"fresh"]), int(1));
    assert_eq!(text(&mut client, &[b"MSET", b"b", b"x", b"c", b"y"]), "OK");
    let mget = client
        .command(&[b"MGET", b"a", b"b", b"nope", b"c"])
        .expect("MGET");
    assert_eq!(
        mget,
        OwnedFrame::Array(vec![
            OwnedFrame::BulkString(b"40".to_vec()),
            OwnedFrame::BulkString(b"x".to_vec()),
            OwnedFrame::Null,
            OwnedFrame::BulkString(b"y".to_vec()),
        ])
    );
    assert_eq!(text(&mut client, &[b"EXISTS", b"a", b"a", b"nope"]), int(2));
    assert_eq!(text(&mut client, &[b"DBSIZE"]), int(4));
    assert_eq!(text(&mut client, &[b"DEL", b"b", b"nope"]), int(1));
    assert_eq!(text(&mut client, &[b"DBSIZE"]), int(3));
    // Error shapes.
    assert_eq!(
        text(&mut client, &[b"INCR", b"c"]),
        "error: ERR value is not an integer or out of range"
    );
    assert_eq!(
        text(&mut client, &[b"GET"]),
        "error: ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        text(&mut client, &[b"SET", b"max", b"9223372036854775807"]),
        "OK"
    );
    assert_eq!(
        text(&mut client, &[b"INCR", b"max"]),
        "error: ERR increment or decrement would overflow"
    );
    assert_eq!(
        text(&mut client, &[b"INCRBY", b"a", b"ten"]),
        "error: ERR value is not an integer or out of range"
    );
    assert!(text(&mut client, &[b"NOSUCH"]).starts_with("error: ERR unknown command"));
}

#[test]
fn multi_exec_runs_queued_commands_as_one_transaction() {
    let group = Group::start_all(1, &["--log-sync", "none"]);
    let mut client = group.members[0].client();
    assert_eq!(
        text(&mut client, &[b"EXEC"]),
        "error: ERR EXEC without MULTI"
    );
    assert_eq!(
        text(&mut client, &[b"DISCARD"]),
        "error: ERR DISCARD without MULTI"
    );
    assert_eq!(text(&mut client, &[b"MULTI"]), "OK");
    assert_eq!(
        text(&mut client, &[b"MULTI"]),
        "error: ERR MULTI calls can not be nested"
    );
    assert_eq!(text(&mut client, &[b"SET", b"from", b"100"]), "QUEUED");
    assert_eq!(text(&mut client, &[b"DECRBY", b"from", b"30"]), "QUEUED");
    assert_eq!(text(&mut client, &[b"INCRBY", b"to", b"30"]), "QUEUED");
    assert_eq!(text(&mut client, &[b"GET", b"from"]), "QUEUED");
    let exec = client.command(&[b"EXEC"]).expect("EXEC");
    assert_eq!(
        exec,
        OwnedFrame::Array(vec![
            OwnedFrame::SimpleString(b"OK".to_vec()),
            OwnedFrame::Integer(70),
            OwnedFrame::Integer(30),
            OwnedFrame::BulkString(b"70".to_vec()),
        ])
    );
    // DISCARD drops the queue; nothing is written.
    assert_eq!(text(&mut client, &[b"MULTI"]), "OK");
    assert_eq!(text(&mut client, &[b"SET", b"from", b"0"]), "QUEUED");
    assert_eq!(text(&mut client, &[b"DISCARD"]), "OK");
    assert_eq!(text(&mut client, &[b"GET", b"from"]), "70");
    // A command refused while queueing aborts the whole EXEC.
    assert_eq!(text(&mut client, &[b"MULTI"]), "OK");
    assert_eq!(text(&mut client, &[b"SET", b"from", b"0"]), "QUEUED");
    assert!(text(&mut client, &[b"INCRBY", b"from"]).starts_with("error: ERR wrong number"));
    assert_eq!(
        text(&mut client, &[b"EXEC"]),
        "error: EXECABORT Transaction discarded because of previous errors."
    );
    assert_eq!(text(&mut client, &[b"GET", b"from"]), "70");
}

#[test]
fn pipelined_commands_on_one_connection_run_in_order() {
    let group = Group::start_all(1, &["--log-sync", "none"]);
    let mut client = group.members[0].client();
    let mut commands: Vec<Vec<&[u8]>> = Vec::new();
    for _ in 0..500 {
        commands.push(vec![b"INCR", b"n"]);
        commands.push(vec![b"GET", b"n"]);
    }
    let refs: Vec<&[&[u8]]> = commands.iter().map(Vec::as_slice).collect();
    client.send(&refs).expect("send the pipeline");
    for round in 1..=500_i64 {
        assert_eq!(
            client.read_reply().expect("INCR"),
            OwnedFrame::Integer(round)
        );
        assert_eq!(
            client.read_reply().expect("GET"),
            OwnedFrame::BulkString(round.to_string().into_bytes()),
            "a read sees the write sent before it"
        );
    }
}

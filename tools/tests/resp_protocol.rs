//! The client protocol beyond the data commands, on real `tutti server` processes:
//! WATCH / UNWATCH, RESP3 through HELLO, AUTH with `requirepass`, CONFIG, CLIENT, INFO,
//! ROLE, COMMAND, SELECT, GROUP STATUS, and the limits on bad input.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use redis_protocol::resp2::types::OwnedFrame;
use support::{wait_until, Group, WAIT};
use tutti::client::{frame_text, ClientError, RespClient};

fn text(client: &mut RespClient, args: &[&[u8]]) -> String {
    match client.command(args) {
        Ok(reply) => frame_text(&reply),
        Err(ClientError::Server { message, .. }) => format!("error: {message}"),
        Err(other) => panic!("{args:?}: {other}"),
    }
}

/// Flat (name, value) pairs of a RESP2 map reply.
fn pairs(reply: &OwnedFrame) -> Vec<(String, String)> {
    let OwnedFrame::Array(items) = reply else {
        panic!("a flat map: {reply:?}")
    };
    items
        .chunks(2)
        .map(|pair| (frame_text(&pair[0]), frame_text(&pair[1])))
        .collect()
}

#[test]
fn exec_returns_nil_when_a_watched_key_changed() {
    let group = Group::start_all(1, &["--log-sync", "none"]);
    let mut first = group.members[0].client();
    let mut second = group.members[0].client();
    assert_eq!(text(&mut first, &[b"SET", b"k", b"1"]), "OK");

    // Another client writes the watched key: EXEC does nothing and returns nil.
    assert_eq!(text(&mut first, &[b"WATCH", b"k", b"other"]), "OK");
    assert_eq!(text(&mut second, &[b"SET", b"k", b"2"]), "OK");
    assert_eq!(text(&mut first, &[b"MULTI"]), "OK");
    assert_eq!(text(&mut first, &[b"SET", b"k", b"3"]), "QUEUED");
    assert_eq!(
        client_reply(&mut first, &[b"EXEC"]),
        OwnedFrame::Null,
        "EXEC after a watched key changed is nil"
    );
    assert_eq!(text(&mut first, &[b"GET", b"k"]), "2");

    // EXEC cleared the watch: the next transaction runs.
    assert_eq!(text(&mut first, &[b"MULTI"]), "OK");
    assert_eq!(text(&mut first, &[b"SET", b"k", b"4"]), "QUEUED");
    assert_eq!(
        client_reply(&mut first, &[b"EXEC"]),
        OwnedFrame::Array(vec![OwnedFrame::SimpleString(b"OK".to_vec())])
    );

    // Nobody writes the watched key: EXEC runs.
    assert_eq!(text(&mut first, &[b"WATCH", b"k"]), "OK");
    assert_eq!(text(&mut first, &[b"GET", b"k"]), "4");
    assert_eq!(text(&mut second, &[b"SET", b"unrelated", b"x"]), "OK");
    assert_eq!(text(&mut first, &[b"MULTI"]), "OK");
    assert_eq!(text(&mut first, &[b"INCR", b"k"]), "QUEUED");
    assert_eq!(
        client_reply(&mut first, &[b"EXEC"]),
        OwnedFrame::Array(vec![OwnedFrame::Integer(5)])
    );

    // The client's own write after WATCH counts too (as in Redis).
    assert_eq!(text(&mut first, &[b"WATCH", b"k"]), "OK");
    assert_eq!(text(&mut first, &[b"SET", b"k", b"6"]), "OK");
    assert_eq!(text(&mut first, &[b"MULTI"]), "OK");
    assert_eq!(text(&mut first, &[b"SET", b"k", b"7"]), "QUEUED");
    assert_eq!(
        client_reply(&mut first, &[b"EXEC"]),
        OwnedFrame::Null,
        "EXEC after a watched key changed is nil"
    );

    // UNWATCH and DISCARD forget the watched keys.
    assert_eq!(text(&mut first, &[b"WATCH", b"k"]), "OK");
    assert_eq!(text(&mut second, &[b"SET", b"k", b"8"]), "OK");
    assert_eq!(text(&mut first, &[b"UNWATCH"]), "OK");
    assert_eq!(text(&mut first, &[b"MULTI"]), "OK");
    assert_eq!(text(&mut first, &[b"SET", b"k", b"9"]), "QUEUED");
    assert_eq!(
        text(&mut first, &[b"EXEC"]),
        frame_text(&OwnedFrame::Array(vec![OwnedFrame::SimpleString(
            b"OK".to_vec()
        )]))
    );
    assert_eq!(text(&mut first, &[b"WATCH", b"k"]), "OK");
    assert_eq!(text(&mut first, &[b"MULTI"]), "OK");
    assert_eq!(text(&mut first, &[b"DISCARD"]), "OK");
    assert_eq!(text(&mut second, &[b"SET", b"k", b"10"]), "OK");
    assert_eq!(text(&mut first, &[b"MULTI"]), "OK");
    assert_eq!(text(&mut first, &[b"GET", b"k"]), "QUEUED");
    assert_eq!(
        client_reply(&mut first, &[b"EXEC"]),
        OwnedFrame::Array(vec![OwnedFrame::BulkString(b"10".to_vec())])
    );

    // WATCH inside MULTI is refused, as in Redis.
    assert_eq!(text(&mut first, &[b"MULTI"]), "OK");
    assert_eq!(
        text(&mut first, &[b"WATCH", b"k"]),
        "error: ERR WATCH inside MULTI is not allowed"
    );
    assert_eq!(text(&mut first, &[b"DISCARD"]), "OK");
    assert_eq!(
        text(&mut first, &[b"WATCH"]),
        "error: ERR wrong number of arguments for 'watch' command"
    );
}

#[test]
fn watch_in_a_pipeline_observes_in_command_order() {
    let group = Group::start_all(1, &["--log-sync", "none"]);
    let mut client = group.members[0].client();
    // WATCH, a write of the watched key, then MULTI/EXEC, all in one write: the WATCH
    // runs before the SET, so the EXEC sees the change.
    client
        .send(&[
            &[b"WATCH", b"p"],
            &[b"SET", b"p", b"1"],
            &[b"MULTI"],
            &[b"SET", b"p", b"2"],
            &[b"EXEC"],
            &[b"GET", b"p"],
        ])
        .expect("send");
    let replies: Vec<OwnedFrame> = (0..6)
        .map(|_| client.read_reply().expect("reply"))
        .collect();
    assert_eq!(replies[4], OwnedFrame::Null, "{replies:?}");
    assert_eq!(frame_text(&replies[5]), "1");
}

fn client_reply(client: &mut RespClient, args: &[&[u8]]) -> OwnedFrame {
    client.command(args).expect("reply")
}

/// Sends raw bytes and reads until `complete` says the reply is whole (or EOF).
fn raw_exchange(stream: &mut TcpStream, bytes: &[u8], complete: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    stream.write_all(bytes).expect("write");
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !complete(&reply) {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
            Err(error) => panic!("read after {:?}: {error}", String::from_utf8_lossy(&reply)),
        }
    }
    reply
}

fn resp3_complete(bytes: &[u8]) -> bool {
    matches!(
        redis_protocol::resp3::decode::complete::decode(bytes),
        Ok(Some(_))
    )
}

fn resp2_complete(bytes: &[u8]) -> bool {
    matches!(redis_protocol::resp2::decode::decode(bytes), Ok(Some(_)))
}

fn connect(group: &Group) -> TcpStream {
    let stream = TcpStream::connect(group.members[0].client).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

#[test]
fn hello_3_switches_to_resp3_and_hello_2_back() {
    use redis_protocol::resp3::types::{OwnedFrame as Resp3, Resp3Frame};
    let group = Group::start_all(1, &["--log-sync", "none"]);
    let mut stream = connect(&group);
    let hello = raw_exchange(
        &mut stream,
        b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n",
        resp3_complete,
    );
    assert_eq!(
        hello[0],
        b'%',
        "a RESP3 map: {}",
        String::from_utf8_lossy(&hello)
    );
    let (frame, _) = redis_protocol::resp3::decode::complete::decode(&hello)
        .expect("valid")
        .expect("complete");
    let Resp3::Map { data, .. } = frame else {
        panic!("a map")
    };
    let proto = data
        .iter()
        .find(|(key, _)| key.as_str() == Some("proto"))
        .map(|(_, value)| value.clone());
    assert_eq!(
        proto,
        Some(Resp3::Number {
            data: 3,
            attributes: None
        })
    );
    // RESP3 null, map for CONFIG GET, and PING.
    assert_eq!(
        raw_exchange(
            &mut stream,
            b"*2\r\n$3\r\nGET\r\n$4\r\nnope\r\n",
            resp3_complete
        ),
        b"_\r\n"
    );
    let config = raw_exchange(
        &mut stream,
        b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$8\r\nlog_sync\r\n",
        resp3_complete,
    );
    assert_eq!(config, b"%1\r\n$8\r\nlog_sync\r\n$4\r\nnone\r\n");
    assert_eq!(
        raw_exchange(&mut stream, b"*1\r\n$4\r\nPING\r\n", resp3_complete),
        b"+PONG\r\n"
    );
    // An EXEC whose watched key changed is a RESP3 null.
    let mut other = group.members[0].client();
    raw_exchange(
        &mut stream,
        b"*2\r\n$5\r\nWATCH\r\n$1\r\nw\r\n",
        resp3_complete,
    );
    assert_eq!(text(&mut other, &[b"SET", b"w", b"1"]), "OK");
    raw_exchange(&mut stream, b"*1\r\n$5\r\nMULTI\r\n", resp3_complete);
    raw_exchange(
        &mut stream,
        b"*3\r\n$3\r\nSET\r\n$1\r\nw\r\n$1\r\n2\r\n",
        resp3_complete,
    );
    assert_eq!(
        raw_exchange(&mut stream, b"*1\r\n$4\r\nEXEC\r\n", resp3_complete),
        b"_\r\n"
    );
    // Back to RESP2: a flat array for HELLO, `$-1` for a missing value.
    let hello = raw_exchange(
        &mut stream,
        b"*2\r\n$5\r\nHELLO\r\n$1\r\n2\r\n",
        resp2_complete,
    );
    assert_eq!(hello[0], b'*');
    assert_eq!(
        raw_exchange(
            &mut stream,
            b"*2\r\n$3\r\nGET\r\n$4\r\nnope\r\n",
            resp2_complete
        ),
        b"$-1\r\n"
    );
    let refused = raw_exchange(
        &mut stream,
        b"*2\r\n$5\r\nHELLO\r\n$1\r\n4\r\n",
        resp2_complete,
    );
    assert!(
        refused.starts_with(b"-NOPROTO"),
        "{}",
        String::from_utf8_lossy(&refused)
    );
}

#[test]
fn requirepass_gates_every_command_until_auth() {
    let mut group = Group::new(1, &["--log-sync", "none", "--requirepass", "s3cret"]);
    group.members[0].start();
    // support::Group waits with GROUP MEMBERS, which needs the password here: wait with AUTH.
    wait_until("the member answers PING after AUTH", WAIT, || {
        group.members[0].try_client().is_some_and(|mut client| {
            client.command(&[b"AUTH", b"s3cret"]).is_ok()
                && client
                    .command(&[b"GROUP", b"STATS"])
                    .is_ok_and(|stats| frame_text(&stats).contains("ONLINE"))
        })
    });
    let mut client = group.members[0].client();
    assert_eq!(
        text(&mut client, &[b"GET", b"a"]),
        "error: NOAUTH Authentication required."
    );
    assert_eq!(
        text(&mut client, &[b"PING"]),
        "error: NOAUTH Authentication required."
    );
    assert!(text(&mut client, &[b"HELLO", b"2"]).starts_with("error: NOAUTH HELLO must be called"));
    assert_eq!(
        text(&mut client, &[b"AUTH", b"wrong"]),
        "error: WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(
        text(&mut client, &[b"AUTH", b"someone", b"s3cret"]),
        "error: WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(text(&mut client, &[b"AUTH", b"s3cret"]), "OK");
    assert_eq!(text(&mut client, &[b"PING"]), "PONG");
    assert_eq!(text(&mut client, &[b"SET", b"a", b"1"]), "OK");

    // HELLO with AUTH authenticates and switches in one command.
    let mut other = group.members[0].client();
    let hello = client_reply(
        &mut other,
        &[
            b"HELLO", b"2", b"AUTH", b"default", b"s3cret", b"SETNAME", b"app",
        ],
    );
    assert!(pairs(&hello).contains(&("proto".to_owned(), frame_text(&OwnedFrame::Integer(2)))));
    assert_eq!(text(&mut other, &[b"GET", b"a"]), "1");
    assert_eq!(text(&mut other, &[b"CLIENT", b"GETNAME"]), "app");
    assert_eq!(text(&mut other, &[b"AUTH", b"default", b"s3cret"]), "OK");

    // The password changes at run time; an empty one removes it.
    assert_eq!(
        text(&mut client, &[b"CONFIG", b"SET", b"requirepass", b"n3w"]),
        "OK"
    );
    let mut third = group.members[0].client();
    assert_eq!(
        text(&mut third, &[b"AUTH", b"s3cret"]),
        "error: WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(text(&mut third, &[b"AUTH", b"n3w"]), "OK");
    assert_eq!(
        text(&mut client, &[b"CONFIG", b"SET", b"requirepass", b""]),
        "OK"
    );
    let mut fourth = group.members[0].client();
    assert_eq!(text(&mut fourth, &[b"GET", b"a"]), "1");
    assert!(text(&mut fourth, &[b"AUTH", b"x"])
        .starts_with("error: ERR AUTH <password> called without any password configured"));
}

#[test]
fn config_get_and_set_answer_like_redis() {
    let group = Group::start_all(1, &["--log-sync", "none"]);
    let mut client = group.members[0].client();
    // CONFIG GET / SET.
    let retries = client_reply(&mut client, &[b"CONFIG", b"GET", b"autocommit_retries"]);
    assert_eq!(
        pairs(&retries),
        vec![("autocommit_retries".to_owned(), "3".to_owned())]
    );
    assert_eq!(
        text(
            &mut client,
            &[b"CONFIG", b"SET", b"autocommit_retries", b"7"]
        ),
        "OK"
    );
    let retries = client_reply(&mut client, &[b"CONFIG", b"GET", b"auto*"]);
    assert_eq!(
        pairs(&retries),
        vec![("autocommit_retries".to_owned(), "7".to_owned())]
    );
    let refused = text(&mut client, &[b"CONFIG", b"SET", b"log_sync", b"batch"]);
    assert!(
        refused.contains("log_sync") && refused.contains("immutable"),
        "{refused}"
    );
    assert!(text(
        &mut client,
        &[b"CONFIG", b"SET", b"autocommit_retries", b"many"]
    )
    .starts_with("error: ERR CONFIG SET failed"));
    assert!(text(&mut client, &[b"CONFIG", b"SET", b"nosuch", b"1"])
        .starts_with("error: ERR Unknown option"));
    let all = pairs(&client_reply(&mut client, &[b"CONFIG", b"GET", b"*"]));
    for name in [
        "log_sync",
        "requirepass",
        "transaction_size_limit",
        "group_name",
        "save",
        "appendonly",
    ] {
        assert!(
            all.iter().any(|(option, _)| option == name),
            "{name} in {all:?}"
        );
    }
    assert_eq!(
        pairs(&client_reply(&mut client, &[b"CONFIG", b"GET", b"nomatch"])),
        vec![]
    );
}

#[test]
fn client_select_command_role_info_and_errors_answer_like_redis() {
    let group = Group::start_all(1, &["--log-sync", "none"]);
    let mut client = group.members[0].client();
    assert_eq!(
        text(
            &mut client,
            &[b"CONFIG", b"SET", b"autocommit_retries", b"7"]
        ),
        "OK"
    );
    // CLIENT.
    let id = client_reply(&mut client, &[b"CLIENT", b"ID"]);
    assert!(matches!(id, OwnedFrame::Integer(n) if n > 0));
    assert_eq!(
        client_reply(&mut client, &[b"CLIENT", b"GETNAME"]),
        OwnedFrame::Null
    );
    assert_eq!(
        text(&mut client, &[b"CLIENT", b"SETNAME", b"worker-1"]),
        "OK"
    );
    assert_eq!(text(&mut client, &[b"CLIENT", b"GETNAME"]), "worker-1");
    assert!(text(&mut client, &[b"CLIENT", b"SETNAME", b"a b"])
        .starts_with("error: ERR Client names cannot contain spaces"));
    assert!(text(&mut client, &[b"CLIENT", b"LIST"]).contains("name=worker-1"));
    assert!(text(&mut client, &[b"CLIENT", b"INFO"]).contains("name=worker-1"));
    // SELECT, COMMAND, ROLE, INFO.
    assert_eq!(text(&mut client, &[b"SELECT", b"0"]), "OK");
    assert!(
        text(&mut client, &[b"SELECT", b"1"]).starts_with("error: ERR DB index is out of range")
    );
    assert!(
        matches!(client_reply(&mut client, &[b"COMMAND", b"COUNT"]), OwnedFrame::Integer(n) if n > 20)
    );
    assert_eq!(
        client_reply(&mut client, &[b"COMMAND", b"DOCS"]),
        OwnedFrame::Array(vec![])
    );
    assert_eq!(text(&mut client, &[b"SET", b"x", b"1"]), "OK");
    let OwnedFrame::Array(role) = client_reply(&mut client, &[b"ROLE"]) else {
        panic!("ROLE is an array")
    };
    assert_eq!(frame_text(&role[0]), "master");
    assert!(
        matches!(role[1], OwnedFrame::Integer(n) if n >= 1),
        "offset = watermark: {role:?}"
    );
    let info = text(&mut client, &[b"INFO"]);
    for line in [
        "# Server",
        "# Clients",
        "# Stats",
        "# Replication",
        "# Group",
        "role:master",
        "connected_slaves:0",
        "member_state:ONLINE",
        "members_online:1",
        "autocommit_retries:7",
        "count_transactions_checked:",
        "db0:keys=1",
    ] {
        assert!(info.contains(line), "INFO has {line}: {info}");
    }
    let replication = text(&mut client, &[b"INFO", b"replication"]);
    assert!(
        replication.starts_with("# Replication") && !replication.contains("# Server"),
        "{replication}"
    );
    // GROUP STATUS of a one-member group: online, no tolerance.
    let status: serde_json::Value =
        serde_json::from_str(&text(&mut client, &[b"GROUP", b"STATUS"])).expect("JSON");
    assert_eq!(status["topologyMode"], "multi-primary");
    assert_eq!(status["status"], "OK_NO_TOLERANCE");
    assert_eq!(status["membersOnline"], 1);
    // Unknown commands and arity keep Redis's shapes.
    assert_eq!(
        text(&mut client, &[b"NOSUCH", b"a"]),
        "error: ERR unknown command 'NOSUCH', with args beginning with: 'a' "
    );
    assert_eq!(
        text(&mut client, &[b"ROLE", b"x"]),
        "error: ERR wrong number of arguments for 'role' command"
    );
    // An inline command (telnet style).
    let mut stream = connect(&group);
    assert_eq!(
        raw_exchange(&mut stream, b"PING\r\n", resp2_complete),
        b"+PONG\r\n"
    );
    assert_eq!(
        raw_exchange(&mut stream, b"ECHO \"a b\"\r\n", resp2_complete),
        b"$3\r\na b\r\n"
    );
}

#[test]
fn bad_input_is_refused_with_the_limit_and_affects_no_other_client() {
    let group = Group::start_all(1, &["--log-sync", "none"]);
    let mut bystander = group.members[0].client();
    let until_closed = |_: &[u8]| false;
    // An argument over the bulk limit: error naming the limit, then the connection closes.
    let mut stream = connect(&group);
    let reply = raw_exchange(
        &mut stream,
        b"*2\r\n$3\r\nGET\r\n$999999999\r\n",
        until_closed,
    );
    let reply = String::from_utf8_lossy(&reply).into_owned();
    assert!(
        reply.starts_with("-ERR Protocol error: invalid bulk length (at most"),
        "{reply}"
    );
    // Too many arguments.
    let mut stream = connect(&group);
    let reply = raw_exchange(&mut stream, b"*99999999\r\n", until_closed);
    assert!(String::from_utf8_lossy(&reply).contains("invalid multibulk length"));
    // Not RESP.
    let mut stream = connect(&group);
    let reply = raw_exchange(&mut stream, b"*1\r\n:5\r\n", until_closed);
    assert!(String::from_utf8_lossy(&reply).contains("Protocol error: expected '$'"));
    // A value over transaction_size_limit: an error reply naming the limit; the
    // connection stays usable.
    let big = vec![b'v'; 2 * 1024 * 1024];
    let refused = text(&mut bystander, &[b"SET", b"big", &big]);
    assert!(refused.contains("transaction_size_limit"), "{refused}");
    let mset = text(
        &mut bystander,
        &[b"MSET", b"a", &big[..600_000], b"b", &big[..600_000]],
    );
    assert!(mset.contains("transaction_size_limit"), "{mset}");
    assert_eq!(text(&mut bystander, &[b"PING"]), "PONG");
    assert_eq!(
        client_reply(&mut bystander, &[b"GET", b"big"]),
        OwnedFrame::Null
    );
}

//! The RESP client port: RESP2 over TCP on a session thread (a monoio runtime), with
//! the data commands (`data`), PING, ECHO, HELLO, QUIT, COMMAND and the GROUP admin and
//! diagnostic commands (`admin`).
//!
//! A connection has two tasks. The reader reads whatever the client sent, decodes every
//! complete command (`redis-protocol`), runs them in order and hands their replies, as
//! one batch, to the writer; it goes on reading while earlier proposals are still being
//! ordered, so a pipelining client keeps many `GROUP PROPOSE` in flight at once (the
//! group core batches them) instead of one read's worth per round trip. The writer
//! awaits each batch's replies in command order, as deliveries come in, and writes the
//! batch in one write. At most `REPLY_BATCHES_MAX` batches wait for the writer; then the
//! reader stops reading and TCP pushes back on the client. Data commands are replies of
//! a third kind: they run when the writer reaches them, so a connection's commands run
//! in order and each sees the effects of the ones before it, and a write's reply is
//! written once this member can read it. Bad input gets an error reply; input that is not
//! RESP closes that connection with a logged reason. Nothing a client sends can make the
//! server panic.
//!
//! | command | reply |
//! |---|---|
//! | `PING [msg]` | `+PONG` or `msg` |
//! | `ECHO msg` | `msg` |
//! | `HELLO [2]` | server facts as a flat map (RESP3 is refused with `-NOPROTO`) |
//! | `QUIT` | `+OK`, then the connection closes |
//! | `GROUP MEMBERS` | one row per member: a flat array of column, value pairs |
//! | `GROUP CONNECTIONS` | one row per peer connection, same shape |
//! | `GROUP STATS` | one flat array of name, value pairs |
//! | `GROUP PROPOSE bytes` | the seqno it was delivered at, once delivered here |
//! | `GROUP LOG-DIGEST [seqno]` | `[seqno, digest]`: the xxh3 digest (16 hex digits) of the delivered prefix up to seqno (default: the last delivered) |
//! | `GROUP MEMBER-STATS` | one row: GR's member stats of this member (`replication_group_member_stats`), same shape |
//! | `GROUP STORE-DIGEST` | `[watermark, digest]`: the xxh3 digest of the store's contents at the watermark |
//! | data commands | see [`data`] |

mod admin;
mod data;

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::{TcpListener, TcpStream};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::encode::extend_encode;
use redis_protocol::resp2::types::BytesFrame;
use tutti_engine::group::ProposalTicket;
use tutti_engine::member::Member;

use admin::{group_command, hello};
use data::Connection;

/// Bytes a client may have sent and not yet had answered before it is disconnected.
const QUERY_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Receive buffer growth step.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Commands run per batch before their replies are written.
const PIPELINE_COMMANDS_MAX: usize = 4096;
/// Reply batches one connection may have read and not yet written; beyond it the
/// connection stops reading until the writer catches up.
const REPLY_BATCHES_MAX: usize = 16;
/// Longest a `GROUP PROPOSE` reply waits for the delivery.
const PROPOSE_REPLY_WAIT: Duration = Duration::from_secs(30);
/// Accept backlog of the client listener.
const CLIENT_BACKLOG: i32 = 1024;
/// Client connections served at once (Redis's `maxclients` default); more are told so
/// and closed.
const CLIENTS_MAX: usize = 10_000;

/// Binds the client listener (`SO_REUSEPORT`, so several session threads can share it).
pub fn bind_client_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(CLIENT_BACKLOG)?;
    Ok(socket.into())
}

/// Serves RESP clients on `listener` until the process ends.
pub async fn serve(listener: std::net::TcpListener, member: Arc<Member>) -> std::io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let clients = Rc::new(Cell::new(0usize));
    loop {
        match listener.accept().await {
            Ok((mut stream, remote)) => {
                if clients.get() >= CLIENTS_MAX {
                    tracing::warn!(%remote, "refused a client: {CLIENTS_MAX} clients are connected");
                    let refusal = b"-ERR max number of clients reached\r\n".to_vec();
                    let _ = stream.write_all(refusal).await;
                    continue;
                }
                clients.set(clients.get() + 1);
                let member = Arc::clone(&member);
                let clients = Rc::clone(&clients);
                monoio::spawn(async move {
                    if let Some(reason) = serve_connection(stream, member).await {
                        tracing::warn!(%remote, "client connection closed: {reason}");
                    }
                    clients.set(clients.get() - 1);
                });
            }
            Err(error) => {
                tracing::warn!(%error, "accepting a client connection failed");
                monoio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A reply now, one that waits for a delivery, or a data command that runs when the
/// writer reaches it (after every earlier command of the connection).
enum Reply {
    Now(BytesFrame),
    Delivery(ProposalTicket),
    Later(Pin<Box<dyn Future<Output = BytesFrame>>>),
}

fn error(text: impl Into<String>) -> BytesFrame {
    BytesFrame::Error(text.into().into())
}

fn bulk(text: impl Into<Bytes>) -> BytesFrame {
    BytesFrame::BulkString(text.into())
}

/// Serves one connection; returns why it ended abnormally, if it did.
async fn serve_connection(stream: TcpStream, member: Arc<Member>) -> Option<String> {
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let (batches, pending) = flume::bounded(REPLY_BATCHES_MAX);
    let writing = monoio::spawn(write_replies(writer, pending));
    // The reader drops its end of the queue when it stops; the writer then writes what is
    // left and ends, and the socket closes when both halves are gone.
    let mut connection = Connection::new(member);
    let read_outcome = read_commands(reader, &mut connection, batches).await;
    let write_outcome = writing.await;
    read_outcome.or(write_outcome)
}

/// Reads and runs commands, handing each batch of replies to the writer.
async fn read_commands(
    mut reader: OwnedReadHalf<TcpStream>,
    connection: &mut Connection,
    batches: flume::Sender<Vec<Reply>>,
) -> Option<String> {
    let mut input = BytesMut::with_capacity(READ_BUFFER_BYTES);
    loop {
        let (replies, close) = run_commands(&mut input, connection);
        // A full batch may leave complete commands in the input: run them before reading.
        let more = replies.len() == PIPELINE_COMMANDS_MAX;
        if !replies.is_empty() && batches.send_async(replies).await.is_err() {
            // The writer ended (the client is gone); it says why.
            return None;
        }
        match close {
            Some(Close::Quit) => return None,
            Some(Close::ProtocolError(reason)) => return Some(reason),
            None => {}
        }
        if more {
            continue;
        }
        if input.len() > QUERY_BYTES_MAX {
            return Some(format!(
                "the client sent over {QUERY_BYTES_MAX} bytes without a complete command"
            ));
        }
        if input.capacity() - input.len() < READ_BUFFER_BYTES / 4 {
            input.reserve(READ_BUFFER_BYTES);
        }
        let (len, capacity) = (input.len(), input.capacity());
        let (read, slice) = reader
            .read(monoio::buf::IoBufMut::slice_mut(input, len..capacity))
            .await;
        input = slice.into_inner();
        match read {
            Ok(0) => return None,
            Ok(_) => {}
            Err(failure) => return Some(format!("reading failed: {failure}")),
        }
    }
}

/// Writes every batch of replies, in order, one write per batch.
async fn write_replies(
    mut writer: OwnedWriteHalf<TcpStream>,
    pending: flume::Receiver<Vec<Reply>>,
) -> Option<String> {
    let mut output = BytesMut::new();
    while let Ok(replies) = pending.recv_async().await {
        for reply in replies {
            let frame = match reply {
                Reply::Now(frame) => frame,
                Reply::Delivery(ticket) => delivery_reply(ticket).await,
                Reply::Later(future) => future.await,
            };
            if let Err(failure) = extend_encode(&mut output, &frame, false) {
                return Some(format!("cannot encode a reply: {failure}"));
            }
        }
        let (written, buffer) = writer.write_all(output).await;
        output = buffer;
        output.clear();
        if let Err(failure) = written {
            return Some(format!("writing failed: {failure}"));
        }
    }
    None
}

/// The reply to a `GROUP PROPOSE`: its seqno once delivered here, or why not.
async fn delivery_reply(ticket: ProposalTicket) -> BytesFrame {
    match monoio::time::timeout(PROPOSE_REPLY_WAIT, ticket.delivered()).await {
        Ok(Ok(seqno)) => BytesFrame::Integer(i64::try_from(seqno).unwrap_or(i64::MAX)),
        Ok(Err(failure)) => error(format!("ERR {failure}")),
        Err(_) => error(format!(
            "ERR not delivered within {PROPOSE_REPLY_WAIT:?}; the outcome is unknown"
        )),
    }
}

/// Why a connection closes after its pending replies.
enum Close {
    /// The client sent QUIT.
    Quit,
    /// The client sent bytes that are not RESP.
    ProtocolError(String),
}

/// Decodes and runs the complete commands in `input`; the second value says whether
/// the connection closes after the replies.
fn run_commands(input: &mut BytesMut, connection: &mut Connection) -> (Vec<Reply>, Option<Close>) {
    let mut replies = Vec::new();
    while replies.len() < PIPELINE_COMMANDS_MAX {
        match decode_bytes_mut(input) {
            Ok(Some((frame, _, _))) => {
                let Some(args) = command_args(frame) else {
                    replies.push(Reply::Now(error(
                        "ERR Protocol error: a command is an array of bulk strings",
                    )));
                    continue;
                };
                if args
                    .first()
                    .is_some_and(|name| name.eq_ignore_ascii_case(b"QUIT"))
                {
                    replies.push(Reply::Now(BytesFrame::SimpleString(Bytes::from_static(
                        b"OK",
                    ))));
                    return (replies, Some(Close::Quit));
                }
                replies.push(run_command(&args, connection));
            }
            Ok(None) => break,
            Err(failure) => {
                let reason = format!("the client sent bytes that are not RESP: {failure}");
                replies.push(Reply::Now(error(format!("ERR Protocol error: {failure}"))));
                return (replies, Some(Close::ProtocolError(reason)));
            }
        }
    }
    (replies, None)
}

fn command_args(frame: BytesFrame) -> Option<Vec<Bytes>> {
    let BytesFrame::Array(items) = frame else {
        return None;
    };
    items
        .into_iter()
        .map(|item| match item {
            BytesFrame::BulkString(bytes) | BytesFrame::SimpleString(bytes) => Some(bytes),
            _ => None,
        })
        .collect()
}

fn run_command(args: &[Bytes], connection: &mut Connection) -> Reply {
    let Some(name) = args.first() else {
        return Reply::Now(error("ERR empty command"));
    };
    let name = String::from_utf8_lossy(name).to_ascii_uppercase();
    if let Some(reply) = connection.run(&name, args) {
        return reply;
    }
    let member = connection.member();
    let group = member.group();
    let frame = match (name.as_str(), args.len()) {
        ("PING", 1) => BytesFrame::SimpleString(Bytes::from_static(b"PONG")),
        ("PING" | "ECHO", 2) => bulk(args[1].clone()),
        ("HELLO", _) => hello(args, group),
        ("COMMAND", _) => BytesFrame::Array(Vec::new()),
        ("GROUP", 2..) => return group_command(args, member),
        ("PING" | "ECHO" | "GROUP", _) => error(format!(
            "ERR wrong number of arguments for '{}' command",
            name.to_lowercase()
        )),
        _ => error(format!(
            "ERR unknown command '{}'",
            String::from_utf8_lossy(&args[0])
        )),
    };
    Reply::Now(frame)
}

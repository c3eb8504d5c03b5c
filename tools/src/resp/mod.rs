//! The RESP client port: RESP2 and RESP3 over TCP on a session thread (a monoio
//! runtime), with the data commands (`data`), the connection's own commands (`session`:
//! HELLO, AUTH, CLIENT, SELECT), the GROUP admin commands (`admin`), INFO and ROLE
//! (`info`) and CONFIG (`settings`).
//!
//! ```text
//!  socket ─► reader: parse (`parse`) ─► run each command in order ─► batch of replies
//!                                                                        │ (bounded queue)
//!  socket ◄─ writer: await each reply in order, encode (`frame`) ◄───────┘
//! ```
//!
//! A connection has two tasks. The reader reads whatever the client sent, decodes every
//! complete command, runs them in order and hands their replies, as one batch, to the
//! writer; it goes on reading while earlier proposals are still being ordered, so a
//! pipelining client keeps many commands in flight at once (the group core batches
//! them) instead of one read's worth per round trip. The writer awaits each batch's
//! replies in command order and writes the batch in one write. Data commands (and
//! WATCH, UNWATCH, DISCARD, GROUP LEAVE) are replies that run when the writer reaches
//! them, so a connection's commands run in order and each sees the effects of the ones
//! before it, and a write's reply is written once this member can read it.
//!
//! Backpressure on a client that pipelines without reading replies: a batch holds at
//! most [`PIPELINE_COMMANDS_MAX`] commands and at most [`REPLY_BATCHES_MAX`] batches wait
//! for the writer; then the reader stops reading and TCP pushes back on the client (at
//! most `PIPELINE_COMMANDS_MAX * REPLY_BATCHES_MAX` commands of one connection are in
//! flight). Bad arguments get an error reply; input that is not RESP, or a command over
//! the limits of `parse`, gets an error reply and closes that connection with a logged
//! reason. Nothing a client sends can make the server panic or affect other clients.
//!
//! | command | reply |
//! |---|---|
//! | `PING [msg]` | `+PONG` or `msg` |
//! | `ECHO msg` | `msg` |
//! | `HELLO [2\|3 [AUTH user pass] [SETNAME name]]` | server facts as a map; switches the protocol |
//! | `AUTH [user] password` | `+OK`, or `-WRONGPASS ...` |
//! | `QUIT` | `+OK`, then the connection closes |
//! | `SELECT 0` | `+OK` (only database 0 exists) |
//! | `CLIENT ID / SETNAME / GETNAME / INFO / LIST / SETINFO` | as Redis |
//! | `CLIENT CONSISTENCY [level]` | this connection's consistency level: `+OK`, or the level in force |
//! | `COMMAND`, `COMMAND COUNT / LIST / DOCS / INFO` | empty / the count / names / an empty map / nils |
//! | `CONFIG GET pattern`, `CONFIG SET name value` | see `settings` |
//! | `INFO [section]`, `ROLE` | see `info` |
//! | `GROUP MEMBERS` | one row per member: a flat array of column, value pairs |
//! | `GROUP CONNECTIONS` | one row per peer connection, same shape |
//! | `GROUP STATS` | one flat array of name, value pairs |
//! | `GROUP STATUS` | one JSON document: the group, its members, its failure tolerance |
//! | `GROUP LEAVE` | `+OK` once this member left the group, or an error after a bounded wait |
//! | `GROUP PROPOSE bytes` | the seqno it was delivered at, once delivered here |
//! | `GROUP SET-PRIMARY uuid` | `+OK` once the ordered change is applied here, or the reason every member refused it |
//! | `GROUP SWITCH-MODE SINGLE [uuid]`, `GROUP SWITCH-MODE MULTI` | the same, for the group's mode |
//! | `GROUP LOG-DIGEST [seqno]` | `[seqno, digest]`: the xxh3 digest (16 hex digits) of the delivered prefix up to seqno (default: the last delivered) |
//! | `GROUP MEMBER-STATS` | one row: GR's member stats of this member (`replication_group_member_stats`), same shape |
//! | `GROUP STORE-DIGEST` | `[watermark, digest]`: the xxh3 digest of the store's contents at the watermark |
//! | data commands, MULTI / EXEC / DISCARD, WATCH / UNWATCH | see [`data`]; a write on a member that may not write is `-READONLY <reason>; primary is <host:port>` |

mod admin;
mod data;
mod frame;
mod info;
mod parse;
mod session;
pub(crate) mod settings;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::{TcpListener, TcpStream};
use tutti_engine::group::ProposalTicket;
use tutti_engine::member::Member;

use admin::group_command;
use data::Connection;
use frame::{Frame, Protocol};
use info::COUNTERS;
use parse::{CommandParser, ProtocolError};
use session::{wrong_arity, Clients, Session};

pub use parse::{ARGS_MAX, BULK_BYTES_MAX, COMMAND_BYTES_MAX, LINE_BYTES_MAX};

// The limits of the client port, in one place (those of one command are in `parse`).

/// Bytes a client may have sent and not yet had parsed before it is disconnected.
pub const QUERY_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Receive buffer growth step.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Commands run per batch before their replies are written.
pub const PIPELINE_COMMANDS_MAX: usize = 4096;
/// Reply batches one connection may have read and not yet written; beyond it the
/// connection stops reading until the writer catches up.
pub const REPLY_BATCHES_MAX: usize = 16;
/// Longest a `GROUP PROPOSE` reply waits for the delivery.
const PROPOSE_REPLY_WAIT: Duration = Duration::from_secs(30);
/// Accept backlog of the client listener.
const CLIENT_BACKLOG: i32 = 1024;
/// Client connections served at once (Redis's `maxclients` default); more are told so
/// and closed.
pub const CLIENTS_MAX: usize = 10_000;

const _: () = assert!(BULK_BYTES_MAX + LINE_BYTES_MAX <= QUERY_BYTES_MAX);
const _: () = assert!(data::MULTI_COMMANDS_MAX <= ARGS_MAX);

/// Every command name this port knows (`COMMAND COUNT`, `COMMAND LIST`).
const COMMAND_NAMES: [&str; 28] = [
    "get", "set", "del", "exists", "incr", "incrby", "decr", "decrby", "mget", "mset", "dbsize",
    "multi", "exec", "discard", "watch", "unwatch", "ping", "echo", "hello", "auth", "quit",
    "select", "client", "command", "config", "info", "role", "group",
];

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
    info::mark_started();
    let clients = Rc::new(Clients::default());
    loop {
        match listener.accept().await {
            Ok((mut stream, remote)) => {
                if COUNTERS.connected.load(Ordering::Relaxed) >= CLIENTS_MAX as u64 {
                    COUNTERS
                        .connections_rejected
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%remote, "refused a client: {CLIENTS_MAX} clients are connected");
                    let refusal = b"-ERR max number of clients reached\r\n".to_vec();
                    let _ = stream.write_all(refusal).await;
                    continue;
                }
                COUNTERS
                    .connections_received
                    .fetch_add(1, Ordering::Relaxed);
                COUNTERS.connected.fetch_add(1, Ordering::Relaxed);
                let member = Arc::clone(&member);
                let clients = Rc::clone(&clients);
                monoio::spawn(async move {
                    if let Some(reason) = serve_connection(stream, remote, member, clients).await {
                        tracing::warn!(%remote, "client connection closed: {reason}");
                    }
                    COUNTERS.connected.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Err(error) => {
                tracing::warn!(%error, "accepting a client connection failed");
                monoio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A reply now, one that waits for a delivery, one that runs when the writer reaches
/// it (after every earlier command of the connection), or a reply in a new protocol.
enum Reply {
    Now(Frame),
    Delivery(ProposalTicket),
    Later(Pin<Box<dyn Future<Output = Frame>>>),
    /// HELLO: this reply and every later one are encoded in the protocol given.
    Switch(Protocol, Frame),
}

/// Serves one connection; returns why it ended abnormally, if it did.
async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    member: Arc<Member>,
    clients: Rc<Clients>,
) -> Option<String> {
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let (batches, pending) = flume::bounded(REPLY_BATCHES_MAX);
    let writing = monoio::spawn(write_replies(writer, pending));
    // The reader drops its end of the queue when it stops; the writer then writes what is
    // left and ends, and the socket closes when both halves are gone.
    let mut commands = Commands::new(member, Session::new(remote, clients));
    let read_outcome = read_commands(reader, &mut commands, batches).await;
    let write_outcome = writing.await;
    read_outcome.or(write_outcome)
}

/// Reads and runs commands, handing each batch of replies to the writer.
async fn read_commands(
    mut reader: OwnedReadHalf<TcpStream>,
    commands: &mut Commands,
    batches: flume::Sender<Vec<Reply>>,
) -> Option<String> {
    let mut input = BytesMut::with_capacity(READ_BUFFER_BYTES);
    loop {
        let (replies, close) = commands.run_input(&mut input);
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
    let mut protocol = Protocol::Resp2;
    while let Ok(replies) = pending.recv_async().await {
        for reply in replies {
            let frame = match reply {
                Reply::Now(frame) => frame,
                Reply::Delivery(ticket) => delivery_reply(ticket).await,
                Reply::Later(future) => future.await,
                Reply::Switch(next, frame) => {
                    protocol = next;
                    frame
                }
            };
            frame.encode(protocol, &mut output);
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
async fn delivery_reply(ticket: ProposalTicket) -> Frame {
    match monoio::time::timeout(PROPOSE_REPLY_WAIT, ticket.delivered()).await {
        Ok(Ok(seqno)) => Frame::count(seqno),
        Ok(Err(failure)) => Frame::error(format!("ERR {failure}")),
        Err(_) => Frame::error(format!(
            "ERR not delivered within {PROPOSE_REPLY_WAIT:?}; the outcome is unknown"
        )),
    }
}

/// Why a connection closes after its pending replies.
enum Close {
    /// The client sent QUIT.
    Quit,
    /// The client sent bytes that are not RESP, or a command over the limits.
    ProtocolError(String),
}

/// One connection's command side: the parser, the connection's own state and its
/// transaction state. Everything but the sockets, so it can be driven without them.
struct Commands {
    parser: CommandParser,
    session: Session,
    connection: Connection,
}

impl Commands {
    fn new(member: Arc<Member>, session: Session) -> Commands {
        Commands {
            parser: CommandParser::default(),
            session,
            connection: Connection::new(member),
        }
    }

    /// Decodes and runs the complete commands in `input` (at most
    /// `PIPELINE_COMMANDS_MAX`); the second value says whether the connection closes
    /// after the replies.
    fn run_input(&mut self, input: &mut BytesMut) -> (Vec<Reply>, Option<Close>) {
        let mut replies = Vec::new();
        while replies.len() < PIPELINE_COMMANDS_MAX {
            match self.parser.next_command(input) {
                Ok(Some(args)) => {
                    if args[0].eq_ignore_ascii_case(b"QUIT") {
                        replies.push(Reply::Now(Frame::ok()));
                        return (replies, Some(Close::Quit));
                    }
                    replies.push(self.run_command(&args));
                }
                Ok(None) => break,
                Err(failure) => {
                    replies.push(Reply::Now(protocol_error_reply(&failure)));
                    let reason = format!("protocol error: {failure}");
                    return (replies, Some(Close::ProtocolError(reason)));
                }
            }
        }
        (replies, None)
    }

    fn run_command(&mut self, args: &[Bytes]) -> Reply {
        COUNTERS.commands_processed.fetch_add(1, Ordering::Relaxed);
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        self.session.note_command(&name);
        if self.session.needs_auth(&name) {
            return Reply::Now(Frame::error("NOAUTH Authentication required."));
        }
        if let Some(reply) = self.connection.run(&name, args) {
            return reply;
        }
        let member = self.connection.member();
        let frame = match (name.as_str(), args.len()) {
            ("PING", 1) => Frame::SimpleString(Bytes::from_static(b"PONG")),
            ("PING" | "ECHO", 2) => Frame::BulkString(args[1].clone()),
            ("HELLO", _) => {
                return match self.session.hello(args, member) {
                    (frame, Some(protocol)) => Reply::Switch(protocol, frame),
                    (frame, None) => Reply::Now(frame),
                }
            }
            ("AUTH", _) => self.session.auth(args),
            ("CLIENT", 2..) => self.session.client(args),
            ("SELECT", _) => session::select(args),
            ("COMMAND", _) => command(args),
            ("CONFIG", 2..) => settings::config_command(args, member),
            ("INFO", _) => info::info(args, member),
            ("ROLE", 1) => info::role(member),
            ("GROUP", 2..) => return group_command(args, member),
            ("PING" | "ECHO" | "GROUP" | "CLIENT" | "CONFIG" | "ROLE", _) => {
                wrong_arity(&name.to_lowercase())
            }
            _ => unknown_command(args),
        };
        Reply::Now(frame)
    }
}

/// The error reply before a connection closes for bad input (Redis's wording).
fn protocol_error_reply(failure: &ProtocolError) -> Frame {
    Frame::error(format!("ERR Protocol error: {failure}"))
}

/// Redis's error for an unknown command: it names the command and its first arguments.
fn unknown_command(args: &[Bytes]) -> Frame {
    let mut shown = String::new();
    for arg in args[1..].iter().take(8) {
        shown.push('\'');
        shown.push_str(&String::from_utf8_lossy(&arg[..arg.len().min(128)]));
        shown.push_str("' ");
    }
    Frame::error(format!(
        "ERR unknown command '{}', with args beginning with: {shown}",
        String::from_utf8_lossy(&args[0][..args[0].len().min(128)])
    ))
}

/// `COMMAND [COUNT | LIST | DOCS [name ...] | INFO [name ...]]`: enough for redis-cli
/// and client libraries (no per-command documentation is served).
fn command(args: &[Bytes]) -> Frame {
    let sub = args
        .get(1)
        .map(|sub| String::from_utf8_lossy(sub).to_ascii_uppercase());
    match (sub.as_deref(), args.len()) {
        (None, _) => Frame::Array(Vec::new()),
        (Some("COUNT"), 2) => Frame::count(COMMAND_NAMES.len() as u64),
        (Some("LIST"), 2) => Frame::Array(COMMAND_NAMES.iter().map(|name| Frame::bulk(*name)).collect()),
        (Some("DOCS"), _) => Frame::Map(Vec::new()),
        (Some("INFO"), _) => Frame::Array(args[2..].iter().map(|_| Frame::Null).collect()),
        (Some(other), _) => Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{other}'. Try COMMAND COUNT, LIST, DOCS or INFO."
        )),
    }
}

//! The data commands: each one a transaction of its own, and MULTI/EXEC/DISCARD for
//! several as one transaction (DESIGN.md sections 5 and 13).
//!
//! Every command runs command-style (`Member::execute`): at the moment it runs, against
//! this member's latest local state, so a key written by a local transaction still in
//! flight is read from it and the command is chained to it instead of aborting. What a
//! command checks at certification is what it read: `INCR` reads its key, `SET`, `MSET`
//! and `DEL` read nothing (a blind write is only ordered, never aborted). A conflict with
//! another member's write is retried inside the server up to `autocommit_retries` times;
//! then the client gets `-CONFLICT`. The reply to a write is sent once this member can
//! read it.
//!
//! | command | reply |
//! |---|---|
//! | `GET key` | the value, or nil |
//! | `SET key value` | `+OK` |
//! | `DEL key [key ...]` | keys that existed (read at the snapshot, not checked) |
//! | `EXISTS key [key ...]` | keys that exist (a key given twice counts twice) |
//! | `INCR` / `DECR key`, `INCRBY` / `DECRBY key n` | the new value (64-bit signed) |
//! | `MGET key [key ...]` | values or nils |
//! | `MSET key value [key value ...]` | `+OK` |
//! | `DBSIZE` | keys in the store at the watermark |
//! | `MULTI`, then commands, then `EXEC` / `DISCARD` | `+QUEUED` per command; EXEC: the array of their replies, run as one transaction |
//! | `WATCH key [key ...]` / `UNWATCH` | `+OK` |
//!
//! `WATCH` records each key with the seqno it is observed at: the watermark when the
//! WATCH runs (in command order, like every data command). The next EXEC checks the
//! watched keys at certification as keys it read at that seqno, and returns a nil array
//! (RESP2 `*-1`, RESP3 `_`) instead of running when a watched key was written by a
//! transaction the client did not see: the certifier's index already names a later
//! writer (or no longer remembers that far back), or one of this member's transactions
//! that writes the key is still in flight (it may have started after the WATCH, and
//! reading it would excuse it as a local dependency), or certification aborts the
//! transaction on a watched key. That EXEC is not retried inside the server (Redis's
//! contract: the client retries); a conflict on a key that is not watched is retried as
//! for any command. EXEC, DISCARD and UNWATCH clear the watched keys.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use tutti_engine::certifier::{AbortReason, KeyHash};
use tutti_engine::consistency::Consistency;
use tutti_engine::group::format_uuid;
use tutti_engine::local::CommandTxn;
use tutti_engine::member::{Member, TxnError};
use tutti_engine::txn::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
use tutti_storage::store::Value;
use tutti_storage::Seqno;

use super::frame::Frame;
use super::session::wrong_arity;
use super::Reply;

/// Commands one MULTI may queue.
pub(crate) const MULTI_COMMANDS_MAX: usize = 10_000;
/// Keys one connection may watch at once.
pub(crate) const WATCHED_KEYS_MAX: usize = 10_000;

/// The watched keys and the seqno each was observed at. Shared between the reader,
/// which queues WATCH / EXEC, and the replies that run them in order on the writer.
type Watched = Rc<RefCell<Vec<(Bytes, Seqno)>>>;

/// A parsed data command.
#[derive(Clone, Debug)]
enum Command {
    Get(Bytes),
    Set(Bytes, Bytes),
    Del(Vec<Bytes>),
    Exists(Vec<Bytes>),
    IncrBy(Bytes, i64),
    MGet(Vec<Bytes>),
    MSet(Vec<(Bytes, Bytes)>),
    DbSize,
}

/// A connection's transaction state.
pub(super) struct Connection {
    member: Arc<Member>,
    /// Commands queued since MULTI; `None` outside MULTI.
    queued: Option<Vec<Command>>,
    /// A command refused while queueing: EXEC then aborts (Redis's EXECABORT).
    queue_failed: bool,
    /// The keys watched; changed only by replies that run in command order.
    watched: Watched,
    /// `CLIENT CONSISTENCY`: this connection's level, when it set one.
    consistency: Option<Consistency>,
}

impl Connection {
    pub(super) fn new(member: Arc<Member>) -> Connection {
        Connection {
            member,
            queued: None,
            queue_failed: false,
            watched: Rc::default(),
            consistency: None,
        }
    }

    pub(super) fn member(&self) -> &Arc<Member> {
        &self.member
    }

    /// Runs `name` if it is a data, MULTI or WATCH command; `None` for the others.
    pub(super) fn run(&mut self, name: &str, args: &[Bytes]) -> Option<Reply> {
        match name {
            "MULTI" => Some(Reply::Now(self.multi(args))),
            "EXEC" => Some(self.exec(args)),
            "DISCARD" => Some(self.discard(args)),
            "WATCH" => Some(self.watch(args)),
            "UNWATCH" => Some(self.unwatch(args)),
            "CLIENT"
                if args
                    .get(1)
                    .is_some_and(|sub| sub.eq_ignore_ascii_case(b"CONSISTENCY")) =>
            {
                Some(Reply::Now(self.client_consistency(args)))
            }
            _ => {
                let parsed = parse(name, args)?;
                Some(match (parsed, self.queued.as_mut()) {
                    (Err(refusal), Some(_)) => {
                        self.queue_failed = true;
                        Reply::Now(refusal)
                    }
                    (Err(refusal), None) => Reply::Now(refusal),
                    (Ok(_), Some(queue)) if queue.len() >= MULTI_COMMANDS_MAX => {
                        self.queue_failed = true;
                        Reply::Now(Frame::error(format!(
                            "ERR a MULTI may queue at most {MULTI_COMMANDS_MAX} commands"
                        )))
                    }
                    (Ok(command), Some(queue)) => {
                        queue.push(command);
                        Reply::Now(Frame::SimpleString(Bytes::from_static(b"QUEUED")))
                    }
                    (Ok(command), None) => later(
                        Arc::clone(&self.member),
                        vec![command],
                        (Rc::clone(&self.watched), self.level()),
                        false,
                    ),
                })
            }
        }
    }

    fn multi(&mut self, args: &[Bytes]) -> Frame {
        if args.len() != 1 {
            return wrong_arity("multi");
        }
        if self.queued.is_some() {
            return Frame::error("ERR MULTI calls can not be nested");
        }
        self.queued = Some(Vec::new());
        self.queue_failed = false;
        Frame::ok()
    }

    fn exec(&mut self, args: &[Bytes]) -> Reply {
        if args.len() != 1 {
            return Reply::Now(wrong_arity("exec"));
        }
        let Some(queued) = self.queued.take() else {
            return Reply::Now(Frame::error("ERR EXEC without MULTI"));
        };
        if std::mem::take(&mut self.queue_failed) {
            return self.unwatch_then(Frame::error(
                "EXECABORT Transaction discarded because of previous errors.",
            ));
        }
        later(
            Arc::clone(&self.member),
            queued,
            (Rc::clone(&self.watched), self.level()),
            true,
        )
    }

    /// This connection's consistency level: its own, or the member's default.
    fn level(&self) -> Consistency {
        self.consistency
            .unwrap_or_else(|| self.member.consistency())
    }

    /// `CLIENT CONSISTENCY [level]`: sets this connection's level, or names it.
    fn client_consistency(&mut self, args: &[Bytes]) -> Frame {
        match args {
            [_, _] => Frame::bulk(self.level().to_string()),
            [_, _, level] => match String::from_utf8_lossy(level).parse() {
                Ok(level) => {
                    self.consistency = Some(level);
                    Frame::ok()
                }
                Err(reason) => Frame::error(format!("ERR {reason}")),
            },
            _ => wrong_arity("client|consistency"),
        }
    }

    fn discard(&mut self, args: &[Bytes]) -> Reply {
        if args.len() != 1 {
            return Reply::Now(wrong_arity("discard"));
        }
        if self.queued.take().is_none() {
            return Reply::Now(Frame::error("ERR DISCARD without MULTI"));
        }
        self.queue_failed = false;
        self.unwatch_then(Frame::ok())
    }

    fn watch(&mut self, args: &[Bytes]) -> Reply {
        if args.len() < 2 {
            return Reply::Now(wrong_arity("watch"));
        }
        if self.queued.is_some() {
            return Reply::Now(Frame::error("ERR WATCH inside MULTI is not allowed"));
        }
        if let Some(key) = args[1..].iter().find(|key| key.len() > KEY_BYTES_MAX) {
            return Reply::Now(key_too_large(key));
        }
        let keys = args[1..].to_vec();
        let member = Arc::clone(&self.member);
        let watched = Rc::clone(&self.watched);
        Reply::Later(Box::pin(async move {
            // Observed now, in command order: every write this client saw is applied.
            let observed_at = member.watermark();
            let mut watched = watched.borrow_mut();
            for key in keys {
                // Watching a key again keeps its first observation (as Redis does).
                if watched.iter().any(|(known, _)| *known == key) {
                    continue;
                }
                if watched.len() >= WATCHED_KEYS_MAX {
                    return Frame::error(format!(
                        "ERR a connection may watch at most {WATCHED_KEYS_MAX} keys"
                    ));
                }
                watched.push((key, observed_at));
            }
            Frame::ok()
        }))
    }

    fn unwatch(&mut self, args: &[Bytes]) -> Reply {
        if args.len() != 1 {
            return Reply::Now(wrong_arity("unwatch"));
        }
        self.unwatch_then(Frame::ok())
    }

    /// A reply that clears the watched keys when it runs (in command order), then is
    /// `frame`.
    fn unwatch_then(&self, frame: Frame) -> Reply {
        let watched = Rc::clone(&self.watched);
        Reply::Later(Box::pin(async move {
            watched.borrow_mut().clear();
            frame
        }))
    }
}

/// A reply that runs `commands` as one transaction when the writer reaches it. An
/// EXEC (`exec`) replies with the array of the commands' replies, or a nil array when a
/// watched key changed, and clears the watched keys. Outside MULTI, a command reads a
/// watched key as committed (never from a local in-flight write that may still abort):
/// the client may write what it read back in its EXEC.
fn later(
    member: Arc<Member>,
    commands: Vec<Command>,
    (watched, level): (Watched, Consistency),
    exec: bool,
) -> Reply {
    Reply::Later(Box::pin(async move {
        if let [Command::DbSize] = commands.as_slice() {
            return Frame::count(member.store().len_at(member.watermark()));
        }
        let (checked, committed): (Vec<(Bytes, Seqno)>, Vec<Bytes>) = if exec {
            (std::mem::take(&mut *watched.borrow_mut()), Vec::new())
        } else {
            let keys = watched
                .borrow()
                .iter()
                .map(|(key, _)| key.clone())
                .collect();
            (Vec::new(), keys)
        };
        let hashes: Vec<KeyHash> = checked.iter().map(|(key, _)| KeyHash::of(key)).collect();
        let executed = member
            .execute_at(
                level,
                |txn| {
                    for (key, observed_at) in &checked {
                        if txn.has_in_flight_writer(key) || member.written_after(key, *observed_at)
                        {
                            return None;
                        }
                        txn.check(key, *observed_at);
                    }
                    Some(
                        commands
                            .iter()
                            .map(|command| apply(txn, command, &committed))
                            .collect::<Vec<_>>(),
                    )
                },
                |failure| !watch_failed(failure, &hashes),
            )
            .await;
        match executed {
            Ok(executed) => match executed.result {
                None => Frame::NullArray,
                Some(replies) if exec => Frame::Array(replies),
                Some(mut replies) => replies.pop().unwrap_or(Frame::Null),
            },
            Err(failure) if watch_failed(&failure, &hashes) => Frame::NullArray,
            Err(failure) => txn_error(&failure, &member),
        }
    }))
}

/// Whether certification refused the transaction because of a watched key: a conflict
/// on one, or observations older than the certifier remembers.
fn watch_failed(failure: &TxnError, watched: &[KeyHash]) -> bool {
    match failure {
        TxnError::Conflict { key, .. } => watched.contains(key),
        TxnError::Aborted(AbortReason::SnapshotTooOld { .. }) => !watched.is_empty(),
        _ => false,
    }
}

/// Runs one command inside the transaction and returns its reply.
fn apply(txn: &mut CommandTxn<'_>, command: &Command, committed: &[Bytes]) -> Frame {
    let read = |txn: &mut CommandTxn<'_>, key: &Bytes| {
        if committed.contains(key) {
            txn.get_committed(key)
        } else {
            txn.get(key)
        }
    };
    match command {
        Command::Get(key) => read(txn, key).map_or(Frame::Null, |value| value_frame(&value)),
        Command::Set(key, value) => {
            txn.put(key, Value::from(&value[..]));
            ok()
        }
        Command::Del(keys) => {
            let mut existed = 0_u64;
            for key in keys {
                if txn.peek(key).is_some() {
                    existed += 1;
                }
                txn.delete(key);
            }
            integer(existed)
        }
        Command::Exists(keys) => {
            integer(keys.iter().filter(|key| read(txn, key).is_some()).count() as u64)
        }
        Command::IncrBy(key, by) => {
            let current = match txn.get(key) {
                None => 0,
                Some(value) => match std::str::from_utf8(&value)
                    .ok()
                    .and_then(|text| text.parse::<i64>().ok())
                {
                    Some(number) => number,
                    None => return Frame::error("ERR value is not an integer or out of range"),
                },
            };
            let Some(next) = current.checked_add(*by) else {
                return Frame::error("ERR increment or decrement would overflow");
            };
            txn.put(key, Value::from(next.to_string().as_bytes()));
            Frame::Integer(next)
        }
        Command::MGet(keys) => Frame::Array(
            keys.iter()
                .map(|key| read(txn, key).map_or(Frame::Null, |value| value_frame(&value)))
                .collect(),
        ),
        Command::MSet(pairs) => {
            for (key, value) in pairs {
                txn.put(key, Value::from(&value[..]));
            }
            ok()
        }
        Command::DbSize => Frame::error("ERR DBSIZE cannot run inside MULTI"),
    }
}

/// Parses a data command: `None` if `name` is not one, `Some(Err(reply))` for wrong
/// arguments (Redis's error shapes).
fn parse(name: &str, args: &[Bytes]) -> Option<Result<Command, Frame>> {
    let keys = || args[1..].to_vec();
    let command = match (name, args.len()) {
        ("GET", 2) => Command::Get(args[1].clone()),
        ("SET", 3) => Command::Set(args[1].clone(), args[2].clone()),
        ("SET", 4..) => {
            return Some(Err(Frame::error(
                "ERR syntax error (SET options are not supported)",
            )))
        }
        ("DEL", 2..) => Command::Del(keys()),
        ("EXISTS", 2..) => Command::Exists(keys()),
        ("INCR", 2) => Command::IncrBy(args[1].clone(), 1),
        ("DECR", 2) => Command::IncrBy(args[1].clone(), -1),
        ("INCRBY" | "DECRBY", 3) => {
            let Some(by) = std::str::from_utf8(&args[2])
                .ok()
                .and_then(|text| text.parse::<i64>().ok())
            else {
                return Some(Err(Frame::error(
                    "ERR value is not an integer or out of range",
                )));
            };
            let by = if name == "DECRBY" {
                match by.checked_neg() {
                    Some(negated) => negated,
                    None => return Some(Err(Frame::error("ERR decrement would overflow"))),
                }
            } else {
                by
            };
            Command::IncrBy(args[1].clone(), by)
        }
        ("MGET", 2..) => Command::MGet(keys()),
        ("MSET", n) if n >= 3 && n % 2 == 1 => Command::MSet(
            args[1..]
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect(),
        ),
        ("DBSIZE", 1) => Command::DbSize,
        (
            "GET" | "SET" | "DEL" | "EXISTS" | "INCR" | "DECR" | "INCRBY" | "DECRBY" | "MGET"
            | "MSET" | "DBSIZE",
            _,
        ) => return Some(Err(wrong_arity(&name.to_lowercase()))),
        _ => return None,
    };
    Some(check_sizes(&command).map(|()| command))
}

/// Refuses keys and values over the format's limits before anything runs.
fn check_sizes(command: &Command) -> Result<(), Frame> {
    let (keys, values): (Vec<&Bytes>, Vec<&Bytes>) = match command {
        Command::Get(key) | Command::IncrBy(key, _) => (vec![key], vec![]),
        Command::Set(key, value) => (vec![key], vec![value]),
        Command::Del(keys) | Command::Exists(keys) | Command::MGet(keys) => {
            (keys.iter().collect(), vec![])
        }
        Command::MSet(pairs) => pairs.iter().map(|(key, value)| (key, value)).unzip(),
        Command::DbSize => (vec![], vec![]),
    };
    if let Some(key) = keys.iter().find(|key| key.len() > KEY_BYTES_MAX) {
        return Err(key_too_large(key));
    }
    if let Some(value) = values.iter().find(|value| value.len() > VALUE_BYTES_MAX) {
        return Err(Frame::error(format!(
            "ERR value of {} bytes is over the limit of {VALUE_BYTES_MAX} bytes",
            value.len()
        )));
    }
    Ok(())
}

fn txn_error(failure: &TxnError, member: &Member) -> Frame {
    match failure {
        TxnError::ReadOnly { reason, primary } => Frame::error(format!(
            "READONLY {reason}; primary is {}",
            primary.map_or_else(
                || "not known".to_owned(),
                |primary| client_address_of(member, primary)
            )
        )),
        TxnError::ConsistencyWait { .. } | TxnError::NotAppliedEverywhere { .. } => {
            Frame::error(format!("TIMEOUT {failure}"))
        }
        TxnError::Conflict { .. } | TxnError::Aborted(_) => {
            Frame::error(format!("CONFLICT {failure} (retries exhausted)"))
        }
        TxnError::Busy(_) => Frame::error(format!("BUSY {failure}")),
        TxnError::TooLarge { .. } | TxnError::NotProposed(_) | TxnError::OutcomeUnknown(_) => {
            Frame::error(format!("ERR {failure}"))
        }
    }
}

/// A member's client address as `host:port`, from the members table.
pub(super) fn client_address_of(member: &Member, id: u128) -> String {
    let id = format_uuid(id);
    member
        .group()
        .members()
        .into_iter()
        .find(|row| row.member_id == id)
        .filter(|row| row.member_port != 0)
        .map_or_else(
            || format!("member {id} (its address is not known yet)"),
            |row| format!("{}:{}", row.member_host, row.member_port),
        )
}

fn key_too_large(key: &[u8]) -> Frame {
    Frame::error(format!(
        "ERR key of {} bytes is over the limit of {KEY_BYTES_MAX} bytes",
        key.len()
    ))
}

fn value_frame(value: &Value) -> Frame {
    Frame::bulk(Bytes::copy_from_slice(value))
}

fn ok() -> Frame {
    Frame::ok()
}

fn integer(value: u64) -> Frame {
    Frame::count(value)
}

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

use std::sync::Arc;

use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;
use tutti_engine::local::CommandTxn;
use tutti_engine::member::{Member, TxnError};
use tutti_engine::txn::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
use tutti_storage::store::Value;

use super::{bulk, error, Reply};

/// Commands one MULTI may queue.
const MULTI_COMMANDS_MAX: usize = 10_000;

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
}

impl Connection {
    pub(super) fn new(member: Arc<Member>) -> Connection {
        Connection {
            member,
            queued: None,
            queue_failed: false,
        }
    }

    pub(super) fn member(&self) -> &Arc<Member> {
        &self.member
    }

    /// Runs `name` if it is a data or MULTI command; `None` for the other commands.
    pub(super) fn run(&mut self, name: &str, args: &[Bytes]) -> Option<Reply> {
        match name {
            "MULTI" => Some(Reply::Now(self.multi(args))),
            "EXEC" => Some(self.exec(args)),
            "DISCARD" => Some(Reply::Now(self.discard(args))),
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
                        Reply::Now(error(format!(
                            "ERR a MULTI may queue at most {MULTI_COMMANDS_MAX} commands"
                        )))
                    }
                    (Ok(command), Some(queue)) => {
                        queue.push(command);
                        Reply::Now(BytesFrame::SimpleString(Bytes::from_static(b"QUEUED")))
                    }
                    (Ok(command), None) => later(Arc::clone(&self.member), vec![command], false),
                })
            }
        }
    }

    fn multi(&mut self, args: &[Bytes]) -> BytesFrame {
        if args.len() != 1 {
            return wrong_arity("multi");
        }
        if self.queued.is_some() {
            return error("ERR MULTI calls can not be nested");
        }
        self.queued = Some(Vec::new());
        self.queue_failed = false;
        ok()
    }

    fn exec(&mut self, args: &[Bytes]) -> Reply {
        if args.len() != 1 {
            return Reply::Now(wrong_arity("exec"));
        }
        let Some(queued) = self.queued.take() else {
            return Reply::Now(error("ERR EXEC without MULTI"));
        };
        if std::mem::take(&mut self.queue_failed) {
            return Reply::Now(error(
                "EXECABORT Transaction discarded because of previous errors.",
            ));
        }
        later(Arc::clone(&self.member), queued, true)
    }

    fn discard(&mut self, args: &[Bytes]) -> BytesFrame {
        if args.len() != 1 {
            return wrong_arity("discard");
        }
        if self.queued.take().is_none() {
            return error("ERR DISCARD without MULTI");
        }
        self.queue_failed = false;
        ok()
    }
}

/// A reply that runs `commands` as one transaction when the writer reaches it.
fn later(member: Arc<Member>, commands: Vec<Command>, multi: bool) -> Reply {
    Reply::Later(Box::pin(async move {
        if let [Command::DbSize] = commands.as_slice() {
            return integer(member.store().len_at(member.watermark()));
        }
        let executed = member
            .execute(|txn| {
                commands
                    .iter()
                    .map(|command| apply(txn, command))
                    .collect::<Vec<_>>()
            })
            .await;
        match executed {
            Ok(executed) if multi => BytesFrame::Array(executed.result),
            Ok(mut executed) => executed.result.pop().unwrap_or(BytesFrame::Null),
            Err(failure) => txn_error(&failure),
        }
    }))
}

/// Runs one command inside the transaction and returns its reply.
fn apply(txn: &mut CommandTxn<'_>, command: &Command) -> BytesFrame {
    match command {
        Command::Get(key) => txn
            .get(key)
            .map_or(BytesFrame::Null, |value| value_frame(&value)),
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
            integer(keys.iter().filter(|key| txn.get(key).is_some()).count() as u64)
        }
        Command::IncrBy(key, by) => {
            let current = match txn.get(key) {
                None => 0,
                Some(value) => match std::str::from_utf8(&value)
                    .ok()
                    .and_then(|text| text.parse::<i64>().ok())
                {
                    Some(number) => number,
                    None => return error("ERR value is not an integer or out of range"),
                },
            };
            let Some(next) = current.checked_add(*by) else {
                return error("ERR increment or decrement would overflow");
            };
            txn.put(key, Value::from(next.to_string().as_bytes()));
            BytesFrame::Integer(next)
        }
        Command::MGet(keys) => BytesFrame::Array(
            keys.iter()
                .map(|key| {
                    txn.get(key)
                        .map_or(BytesFrame::Null, |value| value_frame(&value))
                })
                .collect(),
        ),
        Command::MSet(pairs) => {
            for (key, value) in pairs {
                txn.put(key, Value::from(&value[..]));
            }
            ok()
        }
        Command::DbSize => error("ERR DBSIZE cannot run inside MULTI"),
    }
}

/// Parses a data command: `None` if `name` is not one, `Some(Err(reply))` for wrong
/// arguments (Redis's error shapes).
fn parse(name: &str, args: &[Bytes]) -> Option<Result<Command, BytesFrame>> {
    let keys = || args[1..].to_vec();
    let command = match (name, args.len()) {
        ("GET", 2) => Command::Get(args[1].clone()),
        ("SET", 3) => Command::Set(args[1].clone(), args[2].clone()),
        ("SET", 4..) => {
            return Some(Err(error(
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
                return Some(Err(error("ERR value is not an integer or out of range")));
            };
            let by = if name == "DECRBY" {
                match by.checked_neg() {
                    Some(negated) => negated,
                    None => return Some(Err(error("ERR decrement would overflow"))),
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
fn check_sizes(command: &Command) -> Result<(), BytesFrame> {
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
        return Err(error(format!(
            "ERR key of {} bytes is over the limit of {KEY_BYTES_MAX} bytes",
            key.len()
        )));
    }
    if let Some(value) = values.iter().find(|value| value.len() > VALUE_BYTES_MAX) {
        return Err(error(format!(
            "ERR value of {} bytes is over the limit of {VALUE_BYTES_MAX} bytes",
            value.len()
        )));
    }
    Ok(())
}

fn txn_error(failure: &TxnError) -> BytesFrame {
    match failure {
        TxnError::Conflict { .. } | TxnError::Aborted(_) => {
            error(format!("CONFLICT {failure} (retries exhausted)"))
        }
        TxnError::Busy(_) => error(format!("BUSY {failure}")),
        TxnError::TooLarge { .. } | TxnError::NotProposed(_) | TxnError::OutcomeUnknown(_) => {
            error(format!("ERR {failure}"))
        }
    }
}

fn value_frame(value: &Value) -> BytesFrame {
    bulk(Bytes::copy_from_slice(value))
}

fn ok() -> BytesFrame {
    BytesFrame::SimpleString(Bytes::from_static(b"OK"))
}

fn integer(value: u64) -> BytesFrame {
    BytesFrame::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}

fn wrong_arity(name: &str) -> BytesFrame {
    error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

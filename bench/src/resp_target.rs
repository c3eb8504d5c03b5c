//! Running servers over RESP (the `redis` crate's blocking client): any tutti group, or
//! a Redis server, measured the same way.
//!
//! Each client opens its own connection to one address (spread over all of them, or
//! the first only) and runs one command per operation: `SET`, `INCR`, `GET`, and for a
//! transfer `MULTI` / `DECRBY` / `INCRBY`... / `EXEC`. A `-CONFLICT` error reply (tutti's
//! answer once its retries are spent) or a nil `EXEC` (a Redis transaction that did not
//! run) is an abort; any other error is a failure. Member stats are read with
//! `GROUP MEMBER-STATS` where the server has it (a Redis server has none).

use std::time::Duration;

use redis::{Connection, ErrorKind, RedisError, Value};

use crate::target::{BenchError, MemberStatsRow, Outcome, Session, Target};
use crate::workload::{parse_integer, Operation};

/// Timeout of a connection attempt and of every read and write.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Keys one `MGET` of the transfer check reads.
const MGET_CHUNK: usize = 1000;

/// Servers reached over RESP.
pub struct RespTarget {
    addresses: Vec<String>,
    send_to_all: bool,
    /// A level each session sets with `CLIENT CONSISTENCY` (tutti servers only).
    consistency: Option<String>,
}

impl RespTarget {
    /// A target over `addresses` (`host:port`); checks that each answers `PING`.
    pub fn new(
        addresses: Vec<String>,
        send_to_all: bool,
        consistency: Option<String>,
    ) -> Result<RespTarget, BenchError> {
        if addresses.is_empty() {
            return Err(BenchError::Options(
                "--connect needs at least one host:port".to_owned(),
            ));
        }
        for address in &addresses {
            let mut connection = connect(address)?;
            redis::cmd("PING")
                .query::<String>(&mut connection)
                .map_err(|error| failure(address, &error))?;
        }
        Ok(RespTarget {
            addresses,
            send_to_all,
            consistency,
        })
    }
}

fn failure(address: &str, error: &RedisError) -> BenchError {
    BenchError::Connect {
        address: address.to_owned(),
        message: error.to_string(),
    }
}

fn connect(address: &str) -> Result<Connection, BenchError> {
    let client = redis::Client::open(format!("redis://{address}/")).map_err(|error| {
        BenchError::Options(format!("--connect {address:?} is not host:port: {error}"))
    })?;
    let connection = client
        .get_connection_with_timeout(IO_TIMEOUT)
        .map_err(|error| failure(address, &error))?;
    connection
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| connection.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|error| failure(address, &error))?;
    Ok(connection)
}

struct RespSession {
    connection: Connection,
}

/// An error reply: a conflict is an abort, anything else a failure.
fn outcome_of_error(error: &RedisError) -> Outcome {
    let conflict = error.code() == Some("CONFLICT")
        || (error.kind() == ErrorKind::ExecAbortError && error.to_string().contains("CONFLICT"));
    if conflict {
        Outcome::Aborted { retries: 0 }
    } else {
        Outcome::Failed(error.to_string())
    }
}

impl Session for RespSession {
    fn execute(&mut self, operation: &Operation) -> Outcome {
        let connection = &mut self.connection;
        let result: Result<bool, RedisError> = match operation {
            Operation::Write { key, value } => redis::cmd("SET")
                .arg(key)
                .arg(&value[..])
                .query::<()>(connection)
                .map(|()| true),
            Operation::Increment { key } => redis::cmd("INCR")
                .arg(key)
                .query::<i64>(connection)
                .map(|_| true),
            Operation::Read { key } => redis::cmd("GET")
                .arg(key)
                .query::<Option<Vec<u8>>>(connection)
                .map(|_| true),
            Operation::Transfer { from, to, amount } => {
                // MULTI ... EXEC written as one plain pipeline, so the EXEC reply is seen
                // as it is: an array (ran), nil (did not run) or an error (-CONFLICT).
                let mut pipe = redis::pipe();
                pipe.cmd("MULTI").ignore();
                pipe.cmd("DECRBY")
                    .arg(from)
                    .arg(amount * Operation::receivers(to))
                    .ignore();
                for account in to {
                    pipe.cmd("INCRBY").arg(account).arg(*amount).ignore();
                }
                pipe.cmd("EXEC");
                pipe.query::<Vec<Value>>(connection)
                    .map(|replies| !matches!(replies.first(), Some(Value::Nil) | None))
            }
        };
        match result {
            Ok(true) => Outcome::Committed { retries: 0 },
            Ok(false) => Outcome::Aborted { retries: 0 },
            Err(error) => outcome_of_error(&error),
        }
    }
}

/// Parses `GROUP MEMBER-STATS`: one row, an array of column name and value pairs.
fn parse_member_stats(address: &str, reply: &Value) -> Option<MemberStatsRow> {
    let Value::Array(rows) = reply else {
        return None;
    };
    let Some(Value::Array(cells)) = rows.first() else {
        return None;
    };
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        Value::Int(value) => Some(value.to_string()),
        _ => None,
    };
    let mut row = MemberStatsRow {
        member: address.to_owned(),
        columns: Vec::new(),
    };
    for pair in cells.chunks(2) {
        let [name, value] = pair else { return None };
        let (name, value) = (text(name)?, text(value)?);
        if name == "MEMBER_ID" {
            row.member = format!("{value} ({address})");
        } else if let Ok(value) = value.parse() {
            row.columns.push((name, value));
        }
    }
    Some(row)
}

impl Target for RespTarget {
    fn describe(&self) -> String {
        format!("RESP servers {}", self.addresses.join(","))
    }

    fn session(&self, client: usize) -> Result<Box<dyn Session + '_>, BenchError> {
        let address = if self.send_to_all {
            &self.addresses[client % self.addresses.len()]
        } else {
            &self.addresses[0]
        };
        let mut connection = connect(address)?;
        if let Some(level) = &self.consistency {
            redis::cmd("CLIENT")
                .arg("CONSISTENCY")
                .arg(level)
                .query::<()>(&mut connection)
                .map_err(|error| failure(address, &error))?;
        }
        Ok(Box::new(RespSession { connection }))
    }

    fn member_stats(&self) -> Vec<MemberStatsRow> {
        self.addresses
            .iter()
            .filter_map(|address| {
                let mut connection = connect(address).ok()?;
                let reply = redis::cmd("GROUP")
                    .arg("MEMBER-STATS")
                    .query::<Value>(&mut connection)
                    .ok()?;
                parse_member_stats(address, &reply)
            })
            .collect()
    }

    fn sums(&self, keys: &[Vec<u8>]) -> Result<Vec<i64>, BenchError> {
        self.addresses
            .iter()
            .map(|address| {
                let mut connection = connect(address)?;
                let mut sum = 0i64;
                for chunk in keys.chunks(MGET_CHUNK) {
                    let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                        .arg(chunk)
                        .query(&mut connection)
                        .map_err(|error| failure(address, &error))?;
                    for value in &values {
                        sum += parse_integer(value.as_deref()).map_err(|message| {
                            BenchError::Connect {
                                address: address.clone(),
                                message,
                            }
                        })?;
                    }
                }
                Ok(sum)
            })
            .collect()
    }
}

//! One client connection's own state and the commands that change it: the protocol
//! (HELLO), authentication (AUTH, HELLO ... AUTH), the client's id and name (CLIENT),
//! the database (SELECT), and the table of this thread's connections (CLIENT LIST).
//!
//! Everything here is decided when the command is read, in command order, without the
//! group: none of these commands waits for anything.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tutti_engine::group::format_uuid;
use tutti_engine::member::Member;

use super::frame::{Frame, Protocol};
use super::settings;

/// Bytes of a client name (CLIENT SETNAME), at most.
const CLIENT_NAME_BYTES_MAX: usize = 256;

/// The next client id; ids are never reused within a process (Redis's CLIENT ID).
static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

/// What CLIENT LIST shows of one connection.
#[derive(Clone, Debug)]
struct ClientEntry {
    remote: SocketAddr,
    name: Option<Bytes>,
    created: Instant,
    last_command: String,
}

/// The connections of one session thread.
#[derive(Debug, Default)]
pub(crate) struct Clients {
    entries: RefCell<BTreeMap<u64, ClientEntry>>,
}

/// One connection's state.
pub(crate) struct Session {
    /// CLIENT ID.
    pub(crate) id: u64,
    /// The protocol replies are encoded in, as of the last command read.
    pub(crate) protocol: Protocol,
    /// Whether the client may run commands (no password, or AUTH succeeded).
    authenticated: bool,
    clients: Rc<Clients>,
}

impl Session {
    /// A new connection from `remote`, listed in `clients` until dropped.
    pub(crate) fn new(remote: SocketAddr, clients: Rc<Clients>) -> Session {
        let id = NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed);
        clients.entries.borrow_mut().insert(
            id,
            ClientEntry {
                remote,
                name: None,
                created: Instant::now(),
                last_command: String::new(),
            },
        );
        Session {
            id,
            protocol: Protocol::Resp2,
            authenticated: settings::requirepass().is_none(),
            clients,
        }
    }

    /// Whether `name` must wait for authentication (`-NOAUTH`). A password removed
    /// while the client was connected lets it in (as Redis does).
    pub(crate) fn needs_auth(&self, name: &str) -> bool {
        !self.authenticated
            && !matches!(name, "AUTH" | "HELLO" | "QUIT")
            && settings::requirepass().is_some()
    }

    /// Notes the command CLIENT LIST shows as the connection's last.
    pub(crate) fn note_command(&self, name: &str) {
        if let Some(entry) = self.clients.entries.borrow_mut().get_mut(&self.id) {
            if entry.last_command != name {
                name.clone_into(&mut entry.last_command);
            }
        }
    }

    /// `AUTH [username] password`.
    pub(crate) fn auth(&mut self, args: &[Bytes]) -> Frame {
        let (user, password) = match args {
            [_, password] => (None, password),
            [_, user, password] => (Some(user), password),
            _ => return wrong_arity("auth"),
        };
        if settings::requirepass().is_none() {
            return Frame::error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        }
        self.check_password(user, password)
    }

    fn check_password(&mut self, user: Option<&Bytes>, password: &[u8]) -> Frame {
        let user_ok = user.is_none_or(|user| &user[..] == b"default");
        if user_ok && settings::password_matches(password) {
            self.authenticated = true;
            Frame::ok()
        } else {
            Frame::error("WRONGPASS invalid username-password pair or user is disabled.")
        }
    }

    /// `HELLO [protover [AUTH username password] [SETNAME name]]`: the server's facts
    /// as a map, in the protocol asked for; the second value is the protocol to switch
    /// to (`None` when the command failed and nothing changes).
    pub(crate) fn hello(&mut self, args: &[Bytes], member: &Member) -> (Frame, Option<Protocol>) {
        let protocol = match args.get(1).map(|version| &version[..]) {
            None => self.protocol,
            Some(b"2") => Protocol::Resp2,
            Some(b"3") => Protocol::Resp3,
            Some(version)
                if std::str::from_utf8(version).is_ok_and(|v| v.parse::<i64>().is_ok()) =>
            {
                return (Frame::error("NOPROTO unsupported protocol version"), None)
            }
            Some(_) => {
                return (
                    Frame::error("ERR Protocol version is not an integer or out of range"),
                    None,
                )
            }
        };
        let mut name = None;
        let mut rest = args.get(2..).unwrap_or_default();
        while let Some(option) = rest.first() {
            match (option.to_ascii_uppercase().as_slice(), rest) {
                (b"AUTH", [_, user, password, ..]) => {
                    if let Frame::Error(text) = self.check_password(Some(user), password) {
                        return (Frame::Error(text), None);
                    }
                    rest = &rest[3..];
                }
                (b"SETNAME", [_, value, ..]) => {
                    if let Err(refusal) = check_name(value) {
                        return (refusal, None);
                    }
                    name = Some(value.clone());
                    rest = &rest[2..];
                }
                _ => {
                    return (
                        Frame::error(format!(
                            "ERR Syntax error in HELLO option '{}'",
                            String::from_utf8_lossy(option)
                        )),
                        None,
                    )
                }
            }
        }
        if !self.authenticated && settings::requirepass().is_some() {
            return (Frame::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"), None);
        }
        if let Some(name) = name {
            self.set_name(Some(name));
        }
        self.protocol = protocol;
        let facts = [
            ("server", Frame::bulk("tutti")),
            ("version", Frame::bulk(env!("CARGO_PKG_VERSION"))),
            ("proto", Frame::Integer(protocol.version())),
            ("id", Frame::count(self.id)),
            ("mode", Frame::bulk("standalone")),
            ("role", Frame::bulk("master")),
            ("modules", Frame::Array(Vec::new())),
            (
                "member_id",
                Frame::bulk(format_uuid(member.group().member_id())),
            ),
        ];
        (Frame::map(facts), Some(protocol))
    }

    /// `CLIENT ID | SETNAME name | GETNAME | INFO | LIST | SETINFO attr value`.
    pub(crate) fn client(&mut self, args: &[Bytes]) -> Frame {
        let sub = String::from_utf8_lossy(&args[1]).to_ascii_uppercase();
        match (sub.as_str(), args.len()) {
            ("ID", 2) => Frame::count(self.id),
            ("SETNAME", 3) => match check_name(&args[2]) {
                Ok(()) => {
                    self.set_name((!args[2].is_empty()).then(|| args[2].clone()));
                    Frame::ok()
                }
                Err(refusal) => refusal,
            },
            ("GETNAME", 2) => self
                .clients
                .entries
                .borrow()
                .get(&self.id)
                .and_then(|entry| entry.name.clone())
                .map_or(Frame::Null, Frame::BulkString),
            ("INFO", 2) => {
                let entries = self.clients.entries.borrow();
                let line = entries
                    .get(&self.id)
                    .map(|entry| client_line(self.id, entry))
                    .unwrap_or_default();
                Frame::Verbatim(line)
            }
            ("LIST", 2) => {
                let entries = self.clients.entries.borrow();
                Frame::Verbatim(
                    entries
                        .iter()
                        .map(|(&id, entry)| client_line(id, entry))
                        .collect(),
                )
            }
            // Client libraries announce themselves (redis-rs, redis-py); nothing to keep.
            ("SETINFO", 4) => Frame::ok(),
            _ => Frame::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try CLIENT ID, SETNAME, GETNAME, INFO, LIST or SETINFO."
            )),
        }
    }

    fn set_name(&self, name: Option<Bytes>) {
        if let Some(entry) = self.clients.entries.borrow_mut().get_mut(&self.id) {
            entry.name = name;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.clients.entries.borrow_mut().remove(&self.id);
    }
}

/// `SELECT db`: only database 0 exists.
pub(crate) fn select(args: &[Bytes]) -> Frame {
    match args {
        [_, db] if &db[..] == b"0" => Frame::ok(),
        [_, db] if std::str::from_utf8(db).is_ok_and(|db| db.parse::<i64>().is_ok()) => {
            Frame::error("ERR DB index is out of range (tutti has one database, 0)")
        }
        [_, _] => Frame::error("ERR value is not an integer or out of range"),
        _ => wrong_arity("select"),
    }
}

fn check_name(name: &[u8]) -> Result<(), Frame> {
    if name.len() > CLIENT_NAME_BYTES_MAX {
        return Err(Frame::error(format!(
            "ERR Client names are at most {CLIENT_NAME_BYTES_MAX} bytes"
        )));
    }
    if name.iter().any(|&byte| !(b'!'..=b'~').contains(&byte)) {
        return Err(Frame::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

fn client_line(id: u64, entry: &ClientEntry) -> String {
    let name = entry
        .name
        .as_ref()
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .unwrap_or_default();
    format!(
        "id={id} addr={} laddr= fd=0 name={name} age={} idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1\n",
        entry.remote,
        entry.created.elapsed().as_secs(),
        entry.last_command.to_lowercase(),
    )
}

/// Redis's error for a command given the wrong number of arguments.
pub(crate) fn wrong_arity(name: &str) -> Frame {
    Frame::error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

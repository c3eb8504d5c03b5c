//! Shared helpers of the multi-process tests: real `tutti server` processes on
//! 127.0.0.1, each with its own data directory and log file, stopped by PID when the
//! test ends (a Drop guard, so a failing test leaves nothing running).

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tutti::client::{frame_text, ClientError, RespClient};

/// How long a member may take to reach a state the test waits for.
pub const WAIT: Duration = Duration::from_secs(30);
/// How long one RESP exchange may take.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A port nobody listens on right now, never handed out twice in one test process (tests
/// run in parallel threads; the kernel reuses a released port at once), and below the
/// kernel's ephemeral range (32768 and up by default), so no outgoing connection takes it
/// before the member binds it.
pub fn free_port() -> u16 {
    const FIRST: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Test processes that run side by side start far apart in the range.
    let start = std::process::id().wrapping_mul(7_919) % SPAN;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(
            n < SPAN,
            "every port from {FIRST} on was handed out or taken"
        );
        let port = u16::try_from(FIRST + (start + n) % SPAN).expect("ports stay below 32000");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The reply as text, an error reply's message included; `None` when the connection
/// failed.
pub fn reply(client: &mut RespClient, args: &[&[u8]]) -> Option<String> {
    match client.command(args) {
        Ok(frame) => Some(frame_text(&frame)),
        Err(ClientError::Server { message, .. }) => Some(message),
        Err(_) => None,
    }
}

/// The server flags of a test: multi-primary unless the test names a mode (most tests
/// write through every member).
fn mode_args(extra_args: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = extra_args.iter().map(ToString::to_string).collect();
    if !args
        .iter()
        .any(|arg| arg.starts_with("--single-primary-mode"))
    {
        args.push("--single-primary-mode=false".to_owned());
    }
    args
}

/// Polls `check` until it holds or `within` passes; panics with `what` then.
pub fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One member process.
pub struct Member {
    pub index: usize,
    pub data_dir: PathBuf,
    pub log_file: PathBuf,
    pub client: SocketAddr,
    pub peer: SocketAddr,
    pub bootstrap: bool,
    pub seeds: Vec<SocketAddr>,
    pub extra_args: Vec<String>,
    /// Where the member serves `/metrics` and `/health`, when it does.
    pub metrics: Option<SocketAddr>,
    pub child: Option<Child>,
    group_name: String,
    starts: usize,
}

impl Member {
    /// Starts (or restarts) the process on its data directory.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "member {} is running", self.index);
        self.starts += 1;
        let log_path = self.data_dir.with_extension(format!("log.{}", self.starts));
        let log = std::fs::File::create(&log_path).expect("log file");
        let log_err = log.try_clone().expect("log file");
        self.log_file = log_path;
        let mut command = Command::new(env!("CARGO_BIN_EXE_tutti"));
        command
            .arg("server")
            .arg("--group-name")
            .arg(&self.group_name)
            .arg("--data-dir")
            .arg(&self.data_dir);
        command
            .arg("--client-address")
            .arg(self.client.to_string())
            .arg("--peer-address")
            .arg(self.peer.to_string());
        // The default backend: io_uring where it works (checked at start-up), else epoll.
        // `tutti cluster`'s test runs on epoll explicitly.
        if self.bootstrap {
            command.arg("--bootstrap");
        }
        if !self.seeds.is_empty() {
            let seeds: Vec<String> = self.seeds.iter().map(ToString::to_string).collect();
            command.arg("--seeds").arg(seeds.join(","));
        }
        if let Some(metrics) = self.metrics {
            command.arg("--metrics-address").arg(metrics.to_string());
        }
        command.args(&self.extra_args);
        command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        self.child = Some(command.spawn().expect("tutti server starts"));
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits (bounded) for the exit; returns the exit code.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn client(&self) -> RespClient {
        RespClient::connect(&self.client.to_string(), CLIENT_TIMEOUT)
            .expect("member answers on its client port")
    }

    pub fn try_client(&self) -> Option<RespClient> {
        RespClient::connect(&self.client.to_string(), CLIENT_TIMEOUT).ok()
    }

    /// `GROUP STATS` as (name, value) pairs.
    pub fn stats(&self) -> Option<Vec<(String, String)>> {
        let mut client = self.try_client()?;
        let reply = client.command(&[b"GROUP", b"STATS"]).ok()?;
        let redis_protocol::resp2::types::OwnedFrame::Array(items) = reply else {
            return None;
        };
        let texts: Vec<String> = items.iter().map(tutti::client::frame_text).collect();
        Some(
            texts
                .chunks(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect(),
        )
    }

    pub fn stat(&self, name: &str) -> Option<String> {
        self.stats()?
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// This member's rows of `GROUP MEMBERS`: (`MEMBER_ID`, `MEMBER_STATE`).
    pub fn members(&self) -> Option<Vec<(String, String)>> {
        self.member_rows(&["MEMBER_ID", "MEMBER_STATE"])
            .map(|rows| {
                rows.into_iter()
                    .map(|row| (row[0].clone(), row[1].clone()))
                    .collect()
            })
    }

    /// The given columns of this member's `GROUP MEMBERS` rows.
    pub fn member_rows(&self, columns: &[&str]) -> Option<Vec<Vec<String>>> {
        let mut client = self.try_client()?;
        let rows = client.table(&[b"GROUP", b"MEMBERS"]).ok()?;
        let cell = |row: &Vec<(String, String)>, name: &str| {
            row.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        Some(
            rows.iter()
                .map(|row| columns.iter().map(|name| cell(row, name)).collect())
                .collect(),
        )
    }

    /// Whether this member shows exactly `n` members, all ONLINE, and the roles settled:
    /// one PRIMARY in single-primary mode, every member PRIMARY in multi-primary mode.
    pub fn sees_online(&self, n: usize) -> bool {
        let Some(rows) = self.member_rows(&["MEMBER_STATE", "MEMBER_ROLE"]) else {
            return false;
        };
        let primaries = rows.iter().filter(|row| row[1] == "PRIMARY").count();
        rows.len() == n
            && rows.iter().all(|row| row[0] == "ONLINE")
            && match self.stat("mode").as_deref() {
                Some("single-primary") => primaries == 1,
                Some("multi-primary") => primaries == n,
                _ => false,
            }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    pub fn digest_at(&self, seqno: u64) -> Option<String> {
        self.try_client()?
            .log_digest(Some(seqno))
            .ok()
            .map(|(_, digest)| digest)
    }

    pub fn last_delivered(&self) -> Option<u64> {
        self.try_client()?
            .log_digest(None)
            .ok()
            .map(|(seqno, _)| seqno)
    }
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) on a child this test started; no memory is involved.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Whether process `pid` still exists (and is not a zombie we reaped).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    exists
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.contains(") Z "))
}

/// A group of member processes; every process is killed when it is dropped.
pub struct Group {
    pub members: Vec<Member>,
    pub dir: tempfile::TempDir,
}

impl Group {
    /// Prepares `n` members (the first bootstraps, the others use it as their seed)
    /// without starting them.
    pub fn new(n: usize, extra_args: &[&str]) -> Group {
        let dir = tempfile::tempdir().expect("temp dir");
        let group_name = uuid::Uuid::new_v4().hyphenated().to_string();
        let first_peer = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let members = (0..n)
            .map(|index| {
                let data_dir = dir.path().join(format!("member-{index}"));
                Member {
                    index,
                    log_file: data_dir.with_extension("log"),
                    data_dir,
                    client: SocketAddr::from(([127, 0, 0, 1], free_port())),
                    peer: if index == 0 {
                        first_peer
                    } else {
                        SocketAddr::from(([127, 0, 0, 1], free_port()))
                    },
                    bootstrap: index == 0,
                    seeds: if index == 0 {
                        Vec::new()
                    } else {
                        vec![first_peer]
                    },
                    extra_args: mode_args(extra_args),
                    metrics: None,
                    child: None,
                    group_name: group_name.clone(),
                    starts: 0,
                }
            })
            .collect();
        Group { members, dir }
    }

    /// Starts every member and waits until each shows all of them ONLINE.
    pub fn start_all(n: usize, extra_args: &[&str]) -> Group {
        let mut group = Group::new(n, extra_args);
        for member in &mut group.members {
            member.start();
        }
        group.wait_all_online();
        group
    }

    /// Gives every member a metrics address (before they start).
    pub fn serve_metrics(&mut self) {
        for member in &mut self.members {
            member.metrics = Some(SocketAddr::from(([127, 0, 0, 1], free_port())));
        }
    }

    pub fn wait_all_online(&self) {
        let n = self.members.len();
        for member in &self.members {
            wait_until(
                &format!("member {} shows {n} members ONLINE", member.index),
                WAIT,
                || member.sees_online(n),
            );
        }
    }

    /// The index of the running member that member `asked` names primary (`GROUP STATS`).
    pub fn primary(&self, asked: usize) -> Option<usize> {
        let primary = self.members[asked].stat("primary")?;
        self.members.iter().position(|member| {
            member.child.is_some() && member.stat("member_id").as_deref() == Some(primary.as_str())
        })
    }

    /// The index of the member that is sequencer, as member 0 (or the first alive) sees it.
    pub fn sequencer(&self) -> Option<usize> {
        let asked = self.members.iter().find(|member| member.child.is_some())?;
        let sequencer = asked.stat("sequencer")?;
        self.members
            .iter()
            .position(|member| member.stat("member_id").as_deref() == Some(sequencer.as_str()))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Waits until every member applied the same prefix and holds the same store
    /// (`GROUP STORE-DIGEST` equal everywhere); returns that `[watermark, digest]`.
    pub fn wait_same_store(&self) -> String {
        let mut agreed = String::new();
        wait_until("every member holds the same store", WAIT, || {
            let digests: Vec<Option<String>> = self
                .members
                .iter()
                .map(|member| {
                    let reply = member
                        .try_client()?
                        .command(&[b"GROUP", b"STORE-DIGEST"])
                        .ok()?;
                    Some(tutti::client::frame_text(&reply))
                })
                .collect();
            let same = digests[0].is_some() && digests.iter().all(|digest| *digest == digests[0]);
            if same {
                agreed = digests[0].clone().unwrap_or_default();
            }
            same
        });
        agreed
    }

    /// Dumps every member's log (for a failing test's output).
    pub fn dump_logs(&self) {
        for member in &self.members {
            eprintln!(
                "===== member {} log ({}) =====\n{}",
                member.index,
                member.log_file.display(),
                member.log_text()
            );
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        for member in &mut self.members {
            member.kill9();
        }
    }
}

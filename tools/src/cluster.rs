//! `tutti cluster`: a local N-member group with one command.
//!
//! It starts N child `tutti server` processes on 127.0.0.1 (the first bootstraps the
//! group, the others join with it as their seed), each with its own data directory and
//! log file under the cluster directory (a new temporary one unless `--data-dir` is
//! given), prints where each listens (clients, peers, metrics), writes
//! `<dir>/cluster.json`, waits (bounded) until
//! every member shows every member ONLINE, and says so. On SIGINT or SIGTERM it stops
//! every child: SIGTERM (each leaves the group), then SIGKILL after a bounded wait. A
//! cluster directory used before is started again on the same data and group name.
//! The group is single-primary (as Group Replication's default) unless
//! `--multi-primary` is given.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::client::RespClient;

/// Most members of a local group (the gcs's `MEMBERS_MAX`).
const MEMBERS_MAX: usize = 9;
/// How long the cluster waits for every member to be ONLINE.
const ONLINE_WAIT: Duration = Duration::from_secs(60);
/// How long a stopping child may take after SIGTERM before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// Pause between polls.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Name of the cluster description file.
pub const CLUSTER_FILE_NAME: &str = "cluster.json";

/// `tutti cluster` options.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// Number of members (1..=9).
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    /// First port: member i listens for clients on base+3i, for peers on base+3i+1 and
    /// serves metrics on base+3i+2. Without it, free ports are picked.
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Directory for the members' data and logs (a new temporary one by default).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Multi-primary mode: every member accepts writes.
    #[arg(long, conflicts_with = "single_primary")]
    pub multi_primary: bool,
    /// Single-primary mode (the default): one elected primary accepts writes.
    #[arg(long)]
    pub single_primary: bool,
    /// `log_sync` of every member: `batch`, `interval:<ms>` or `none`.
    #[arg(long, default_value = "batch")]
    pub log_sync: String,
    /// `io_backend` of every member: auto | uring | epoll.
    #[arg(long, default_value = "auto")]
    pub io_backend: String,
}

/// One member in `cluster.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterMember {
    /// `MEMBER_ID` (UUID).
    pub member_id: String,
    /// The server's process id.
    pub pid: u32,
    /// Where RESP clients connect.
    pub client_address: SocketAddr,
    /// Where the other members connect.
    pub peer_address: SocketAddr,
    /// Where Prometheus scrapes `/metrics` (and `/health` answers).
    pub metrics_address: SocketAddr,
    /// The member's data directory.
    pub data_dir: PathBuf,
    /// The member's log file.
    pub log_file: PathBuf,
}

/// `cluster.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterFile {
    /// The group's name (UUID).
    pub group_name: String,
    /// The members, the bootstrapping one first.
    pub members: Vec<ClusterMember>,
}

/// Runs `tutti cluster`; returns the exit code.
pub fn run(args: &ClusterArgs) -> i32 {
    if args.members == 0 || args.members > MEMBERS_MAX {
        eprintln!("tutti cluster: --members must be between 1 and {MEMBERS_MAX}");
        return 2;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(error) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("tutti cluster: cannot install the signal handler: {error}");
            return 1;
        }
    }
    let dir = args.data_dir.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        std::env::temp_dir().join(format!("tutti-cluster-{}-{stamp}", std::process::id()))
    });
    let mut children = Vec::new();
    let code = match start_all(args, &dir, &mut children) {
        Ok(()) => supervise(&stop, &mut children, args.members),
        Err(error) => {
            eprintln!("tutti cluster: {error}");
            1
        }
    };
    stop_all(&mut children);
    println!(
        "tutti cluster: every member stopped; data in {}",
        dir.display()
    );
    code
}

/// The group name of a cluster directory used before, or a new one.
fn group_name(dir: &Path) -> String {
    fs::read_to_string(dir.join(CLUSTER_FILE_NAME))
        .ok()
        .and_then(|text| serde_json::from_str::<ClusterFile>(&text).ok())
        .map_or_else(
            || uuid::Uuid::new_v4().hyphenated().to_string(),
            |file| file.group_name,
        )
}

/// A member's client, peer and metrics addresses.
struct Addresses {
    client: SocketAddr,
    peer: SocketAddr,
    metrics: SocketAddr,
}

/// Every member's addresses: from `--base-port` on (three consecutive ports each), or
/// free ports all picked at once, so no two members are handed the same one.
fn addresses(args: &ClusterArgs) -> Result<Vec<Addresses>, String> {
    let count = 3 * args.members;
    let all = match args.base_port {
        Some(base) => (0..count)
            .map(|offset| {
                u16::try_from(usize::from(base) + offset)
                    .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
                    .map_err(|_| "--base-port is too high".to_owned())
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => tutti_net::transport::free_loopback_addrs(count)
            .map_err(|error| format!("cannot pick free ports: {error}"))?,
    };
    Ok(all
        .chunks_exact(3)
        .map(|ports| Addresses {
            client: ports[0],
            peer: ports[1],
            metrics: ports[2],
        })
        .collect())
}

fn start_all(args: &ClusterArgs, dir: &Path, children: &mut Vec<Child>) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let group = group_name(dir);
    let mut members = Vec::new();
    let mut seed = None;
    for (index, addresses) in addresses(args)?.iter().enumerate() {
        let (child, member) = spawn_member(args, dir, &group, (index, addresses), seed)?;
        seed.get_or_insert(member.peer_address);
        children.push(child);
        members.push(member);
    }
    for member in &mut members {
        member.member_id = member_id(&member.data_dir)?;
    }
    let file = ClusterFile {
        group_name: group,
        members,
    };
    let text = serde_json::to_string_pretty(&file).map_err(|error| error.to_string())?;
    fs::write(dir.join(CLUSTER_FILE_NAME), text)
        .map_err(|error| format!("cannot write {CLUSTER_FILE_NAME}: {error}"))?;
    println!("wrote {}", dir.join(CLUSTER_FILE_NAME).display());
    wait_online(&file)
}

/// Starts member `index`: the bootstrapping one without a seed, the others with `seed`.
fn spawn_member(
    args: &ClusterArgs,
    dir: &Path,
    group: &str,
    (index, addresses): (usize, &Addresses),
    seed: Option<SocketAddr>,
) -> Result<(Child, ClusterMember), String> {
    let exe = std::env::current_exe()
        .map_err(|error| format!("cannot find the tutti binary: {error}"))?;
    let &Addresses {
        client,
        peer,
        metrics,
    } = addresses;
    let data_dir = dir.join(format!("member-{index}"));
    fs::create_dir_all(&data_dir)
        .map_err(|error| format!("cannot create {}: {error}", data_dir.display()))?;
    let log_file = dir.join(format!("member-{index}.log"));
    let log = fs::File::create(&log_file)
        .map_err(|error| format!("cannot create {}: {error}", log_file.display()))?;
    let log_err = log.try_clone().map_err(|error| error.to_string())?;
    let mut command = Command::new(&exe);
    command
        .arg("server")
        .arg("--group-name")
        .arg(group)
        .arg("--data-dir")
        .arg(&data_dir);
    command
        .arg("--client-address")
        .arg(client.to_string())
        .arg("--peer-address")
        .arg(peer.to_string())
        .arg("--metrics-address")
        .arg(metrics.to_string());
    command
        .arg("--log-sync")
        .arg(&args.log_sync)
        .arg("--io-backend")
        .arg(&args.io_backend)
        .arg(format!("--single-primary-mode={}", !args.multi_primary));
    match seed {
        None => command.arg("--bootstrap"),
        Some(seed) => command.arg("--seeds").arg(seed.to_string()),
    };
    command.stdin(Stdio::null()).stdout(log).stderr(log_err);
    let child = command
        .spawn()
        .map_err(|error| format!("cannot start member {index}: {error}"))?;
    println!(
        "member {index}: pid {} client {client} peer {peer} metrics http://{metrics}/metrics data {} log {}",
        child.id(),
        data_dir.display(),
        log_file.display()
    );
    let member = ClusterMember {
        member_id: String::new(),
        pid: child.id(),
        client_address: client,
        peer_address: peer,
        metrics_address: metrics,
        data_dir,
        log_file,
    };
    Ok((child, member))
}

/// Reads a member's id from its identity file (written at its first start).
fn member_id(data_dir: &Path) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Identity {
        member_id: String,
    }
    let path = data_dir.join("identity.toml");
    let deadline = Instant::now() + ONLINE_WAIT;
    loop {
        if let Some(identity) = fs::read_to_string(&path)
            .ok()
            .and_then(|text| toml::from_str::<Identity>(&text).ok())
        {
            return Ok(identity.member_id);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} did not appear within {ONLINE_WAIT:?}; see the member's log",
                path.display()
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Whether every member shows `expected` members, all ONLINE.
pub fn all_online(addr: &str, expected: usize) -> bool {
    let Ok(mut client) = RespClient::connect(addr, Duration::from_secs(2)) else {
        return false;
    };
    let Ok(rows) = client.table(&[b"GROUP", b"MEMBERS"]) else {
        return false;
    };
    rows.len() == expected
        && rows.iter().all(|row| {
            row.iter()
                .any(|(column, value)| column == "MEMBER_STATE" && value == "ONLINE")
        })
}

fn wait_online(file: &ClusterFile) -> Result<(), String> {
    let deadline = Instant::now() + ONLINE_WAIT;
    let expected = file.members.len();
    while !file
        .members
        .iter()
        .all(|member| all_online(&member.client_address.to_string(), expected))
    {
        if Instant::now() >= deadline {
            return Err(format!(
                "not every member was ONLINE within {ONLINE_WAIT:?}; see the members' logs"
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    println!(
        "all {expected} members are ONLINE (group {}); Ctrl-C stops them",
        file.group_name
    );
    Ok(())
}

/// Waits for a signal; reports children that exit on their own.
fn supervise(stop: &AtomicBool, children: &mut [Child], members: usize) -> i32 {
    let mut exited = vec![false; members];
    while !stop.load(Ordering::Relaxed) {
        for (index, child) in children.iter_mut().enumerate() {
            if let (false, Ok(Some(status))) = (exited[index], child.try_wait()) {
                exited[index] = true;
                println!("member {index} (pid {}) exited: {status}", child.id());
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    println!("tutti cluster: stopping every member");
    0
}

/// SIGTERM to every child, then SIGKILL to those still running after `STOP_WAIT`.
pub fn stop_all(children: &mut [Child]) {
    for child in children.iter_mut() {
        if matches!(child.try_wait(), Ok(None)) {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill(2) with a pid this process spawned and has not reaped yet
                // (try_wait saw it running), and a valid signal number.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
    }
    let deadline = Instant::now() + STOP_WAIT;
    for child in children.iter_mut() {
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(POLL_INTERVAL);
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

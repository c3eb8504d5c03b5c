//! `tutti cluster --members 3` starts a local group, writes cluster.json, reports every
//! member ONLINE, and stops every child on SIGINT.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{alive, signal, wait_until, WAIT};
use tutti::cluster::ClusterFile;

/// Kills the cluster and every child it listed, whatever happens in the test.
struct Guard {
    cluster: Child,
    pids: Vec<u32>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cluster.kill();
        let _ = self.cluster.wait();
        for pid in &self.pids {
            signal(*pid, libc::SIGKILL);
        }
    }
}

#[test]
fn cluster_starts_three_members_and_ctrl_c_stops_them_all() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cluster = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args([
            "cluster",
            "--members",
            "3",
            "--io-backend",
            "epoll",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tutti cluster starts");
    let stdout = cluster.stdout.take().expect("stdout");
    let mut guard = Guard {
        cluster,
        pids: Vec::new(),
    };
    wait_for_online_report(stdout);
    let file: ClusterFile = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("cluster.json")).expect("cluster.json"),
    )
    .expect("cluster.json parses");
    guard.pids = file.members.iter().map(|member| member.pid).collect();
    assert_eq!(file.members.len(), 3);
    for member in &file.members {
        assert!(!member.member_id.is_empty());
        assert_eq!(
            health(member.metrics_address),
            "HTTP/1.1 200 OK",
            "{} serves its health",
            member.metrics_address
        );
        assert!(
            tutti::cluster::all_online(&member.client_address.to_string(), 3),
            "{} shows 3 members ONLINE",
            member.client_address
        );
    }
    // Single-primary by default: one PRIMARY, as every member sees it.
    for member in &file.members {
        wait_until("one primary", Duration::from_secs(10), || {
            let roles = roles(&member.client_address.to_string());
            roles.len() == 3 && roles.iter().filter(|role| *role == "PRIMARY").count() == 1
        });
    }
    status_and_load_work(&file);
    signal(guard.cluster.id(), libc::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = guard.cluster.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "tutti cluster did not stop within 30s of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "tutti cluster exits 0: {status}");
    for pid in &guard.pids {
        wait_until(
            &format!("member process {pid} is gone"),
            Duration::from_secs(5),
            || !alive(*pid),
        );
    }
}

#[test]
fn the_two_modes_cannot_be_asked_for_together() {
    let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["cluster", "--single-primary", "--multi-primary"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be used with"));
}

/// The `MEMBER_ROLE` column of `GROUP MEMBERS` as a member at `address` shows it.
fn roles(address: &str) -> Vec<String> {
    tutti::client::RespClient::connect(address, Duration::from_secs(10))
        .and_then(|mut client| client.table(&[b"GROUP", b"MEMBERS"]))
        .map(|rows| {
            rows.iter()
                .filter_map(|row| row.iter().find(|(name, _)| name == "MEMBER_ROLE"))
                .map(|(_, role)| role.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /health` on a member's metrics address; returns the status line.
fn health(address: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("the metrics port accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET /health HTTP/1.1\r\n\r\n")
        .expect("request sent");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// Reads the cluster's output until it reports every member ONLINE (bounded).
fn wait_for_online_report(stdout: std::process::ChildStdout) {
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|line: &String| line.contains("all 3 members are ONLINE"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(error) => {
                panic!("no ONLINE report within {WAIT:?} ({error}); output so far: {seen:#?}")
            }
        }
    }
}

/// `tutti status --json` and `tutti load` work against the cluster.
fn status_and_load_work(file: &ClusterFile) {
    let first = file.members[0].client_address.to_string();
    let status = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["status", "--json", "--addr", &first])
        .output()
        .expect("tutti status runs");
    assert!(status.status.success(), "tutti status exits 0");
    let json: serde_json::Value =
        serde_json::from_slice(&status.stdout).expect("tutti status --json prints JSON");
    assert_eq!(json["members"].as_array().map(Vec::len), Some(3), "{json}");
    assert_eq!(
        json["connections"].as_array().map(Vec::len),
        Some(2),
        "{json}"
    );
    let addrs: Vec<String> = file
        .members
        .iter()
        .map(|member| member.client_address.to_string())
        .collect();
    let load = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args([
            "load",
            "--addrs",
            &addrs.join(","),
            "--rate",
            "300",
            "--duration",
            "1s",
            "--payload-bytes",
            "32",
        ])
        .output()
        .expect("tutti load runs");
    let report = String::from_utf8_lossy(&load.stdout);
    let count = |word: &str| -> Option<u64> {
        let mut words = report.split_whitespace();
        words.position(|w| w == word)?;
        words.next()?.parse().ok()
    };
    assert!(load.status.success(), "{report}");
    assert_eq!(count("errors"), Some(0), "{report}");
    assert!(
        count("delivered").is_some_and(|delivered| delivered >= 290),
        "{report}"
    );
}

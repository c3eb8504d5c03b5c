//! Compatibility with real Redis tools against a real 3-member multi-primary group:
//! the `redis` crate (a Redis client library), `redis-cli` and `redis-benchmark`.
//!
//! A read on another member than the write's may lag: a write's reply is sent once the
//! member that ran it applied it, and the other members apply it when it reaches them
//! through the total order (the Redis tools run at the members' default level, which
//! does not wait for that; BEFORE or AFTER would).
//! These tests therefore wait, bounded, until the reading member's watermark (ROLE's
//! offset) reaches the writing member's before they read there.
//!
//! `scripts/test` installs redis-cli and redis-benchmark (package redis-tools); a test
//! here fails, naming the package, if they are missing.

mod support;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Commands, Connection, RedisResult};
use support::{wait_until, Group, WAIT};

/// Runs of the benchmark that may take this long on a debug build, at most.
const BENCHMARK_WAIT: Duration = Duration::from_secs(600);

fn connect(group: &Group, member: usize) -> Connection {
    let url = format!("redis://{}/", group.members[member].client);
    let client = redis::Client::open(url).expect("a valid URL");
    let connection = client
        .get_connection_with_timeout(Duration::from_secs(10))
        .expect("the member accepts a redis-rs connection");
    connection
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    connection
}

/// The member's watermark, as ROLE reports it (the replication offset).
fn watermark(connection: &mut Connection) -> i64 {
    let (role, offset, _replicas): (String, i64, Vec<String>) =
        redis::cmd("ROLE").query(connection).expect("ROLE");
    assert_eq!(role, "master");
    offset
}

/// Waits (bounded) until member `reader` applied everything member `writer` has.
fn catch_up(group: &Group, writer: usize, reader: usize) {
    let target = watermark(&mut connect(group, writer));
    let mut reading = connect(group, reader);
    wait_until(
        &format!("member {reader} applies up to seqno {target}"),
        WAIT,
        || watermark(&mut reading) >= target,
    );
}

fn need(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "{tool} is not installed: install the Debian package redis-tools (scripts/test does)"
    );
}

#[test]
fn redis_rs_write_on_one_member_is_read_on_another() {
    let group = Group::start_all(3, &["--log-sync", "none"]);
    let mut first = connect(&group, 0);
    let () = first.set("greeting", "hello").expect("SET");
    let () = first.mset(&[("a", "1"), ("b", "2")]).expect("MSET");
    let counter: i64 = first.incr("counter", 5).expect("INCRBY");
    assert_eq!(counter, 5);
    catch_up(&group, 0, 1);
    let mut second = connect(&group, 1);
    let greeting: Option<String> = second.get("greeting").expect("GET");
    assert_eq!(greeting.as_deref(), Some("hello"));
    let values: Vec<Option<i64>> = second.mget(&["a", "b", "nope"]).expect("MGET");
    assert_eq!(values, vec![Some(1), Some(2), None]);
    let counter: i64 = second.get("counter").expect("GET");
    assert_eq!(counter, 5);
    let missing: Option<String> = second.get("nope").expect("GET");
    assert_eq!(missing, None);
    // The group's status as one document: three members online, one failure tolerated.
    let status: String = redis::cmd("GROUP")
        .arg("STATUS")
        .query(&mut second)
        .expect("GROUP STATUS");
    let status: serde_json::Value = serde_json::from_str(&status).expect("JSON");
    assert_eq!(status["status"], "OK", "{status}");
    assert_eq!(
        status["statusText"],
        "Group is ONLINE and can tolerate up to 1 failure."
    );
    assert_eq!(
        status["topology"].as_object().map(serde_json::Map::len),
        Some(3)
    );
    // RESP3 through the client library as well.
    let url = format!("redis://{}/?protocol=resp3", group.members[2].client);
    let mut resp3 = redis::Client::open(url)
        .expect("URL")
        .get_connection()
        .expect("a RESP3 connection");
    catch_up(&group, 0, 2);
    let greeting: Option<String> = resp3.get("greeting").expect("GET over RESP3");
    assert_eq!(greeting.as_deref(), Some("hello"));
    let missing: Option<String> = resp3.get("nope").expect("GET over RESP3");
    assert_eq!(missing, None);
}

#[test]
fn concurrent_incr_through_three_members_counts_every_success() {
    const CLIENTS_PER_MEMBER: usize = 4;
    const INCRS_PER_CLIENT: usize = 150;
    let group = Arc::new(Group::start_all(3, &["--log-sync", "none"]));
    let successes = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..3 * CLIENTS_PER_MEMBER)
        .map(|client| {
            let (group, successes, conflicts) = (
                Arc::clone(&group),
                Arc::clone(&successes),
                Arc::clone(&conflicts),
            );
            std::thread::spawn(move || {
                let mut connection = connect(&group, client % 3);
                for _ in 0..INCRS_PER_CLIENT {
                    let reply: RedisResult<i64> = connection.incr("hot", 1);
                    match reply {
                        Ok(_) => {
                            successes.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) if error.code() == Some("CONFLICT") => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => panic!("INCR failed other than by a conflict: {error}"),
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a client thread");
    }
    let successes = successes.load(Ordering::Relaxed);
    let conflicts = conflicts.load(Ordering::Relaxed);
    assert_eq!(
        successes + conflicts,
        (3 * CLIENTS_PER_MEMBER * INCRS_PER_CLIENT) as u64
    );
    assert!(successes > 0, "some INCRs commit");
    for writer in 0..3 {
        for reader in 0..3 {
            catch_up(&group, writer, reader);
        }
    }
    for member in 0..3 {
        let value: u64 = connect(&group, member).get("hot").expect("GET");
        assert_eq!(
            value, successes,
            "member {member}: the counter is the number of successful INCRs ({conflicts} returned CONFLICT)"
        );
    }
}

#[test]
fn watch_multi_exec_transfers_through_three_members_conserve_the_total() {
    const ACCOUNTS: i64 = 4;
    const BALANCE: i64 = 1000;
    const CLIENTS: usize = 6;
    const TRANSFERS_PER_CLIENT: usize = 40;
    let group = Arc::new(Group::start_all(3, &["--log-sync", "none"]));
    let account = |index: i64| format!("account:{index}");
    {
        let mut setup = connect(&group, 0);
        for index in 0..ACCOUNTS {
            let () = setup.set(account(index), BALANCE).expect("SET");
        }
        for reader in 1..3 {
            catch_up(&group, 0, reader);
        }
    }
    let retries = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (group, retries) = (Arc::clone(&group), Arc::clone(&retries));
            std::thread::spawn(move || {
                let mut connection = connect(&group, client % 3);
                for transfer in 0..TRANSFERS_PER_CLIENT {
                    let offset = i64::try_from(client + transfer).expect("small");
                    let from = account(offset % ACCOUNTS);
                    let to = account((offset + 1) % ACCOUNTS);
                    let deadline = Instant::now() + WAIT;
                    // The optimistic loop every Redis client writes: read under WATCH,
                    // write back in MULTI/EXEC, start again when EXEC returns nil.
                    loop {
                        assert!(Instant::now() < deadline, "a transfer never committed");
                        let () = redis::cmd("WATCH")
                            .arg(&from)
                            .arg(&to)
                            .query(&mut connection)
                            .expect("WATCH");
                        let from_balance: i64 = connection.get(&from).expect("GET");
                        let to_balance: i64 = connection.get(&to).expect("GET");
                        let committed: Option<((), ())> = redis::pipe()
                            .atomic()
                            .set(&from, from_balance - 7)
                            .set(&to, to_balance + 7)
                            .query(&mut connection)
                            .expect("EXEC replies with the results or nil");
                        if committed.is_some() {
                            break;
                        }
                        retries.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a client thread");
    }
    for writer in 0..3 {
        for reader in 0..3 {
            catch_up(&group, writer, reader);
        }
    }
    let keys: Vec<String> = (0..ACCOUNTS).map(account).collect();
    let mut seen = Vec::new();
    for member in 0..3 {
        let balances: Vec<i64> = connect(&group, member).mget(&keys).expect("MGET");
        assert_eq!(
            balances.iter().sum::<i64>(),
            BALANCE * ACCOUNTS,
            "member {member} conserves the total: {balances:?} ({} EXECs returned nil and were retried)",
            retries.load(Ordering::Relaxed)
        );
        seen.push(balances);
    }
    assert!(
        seen.windows(2).all(|pair| pair[0] == pair[1]),
        "members agree: {seen:?}"
    );
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn redis_cli_shows_the_group_and_runs_data_commands() {
    need("redis-cli");
    let group = Group::start_all(3, &["--log-sync", "none"]);
    let port = group.members[0].client.port();
    let members = redis_cli(port, &["GROUP", "MEMBERS"]);
    assert_eq!(members.matches("ONLINE").count(), 3, "{members}");
    assert_eq!(redis_cli(port, &["SET", "k", "v"]).trim(), "OK");
    assert_eq!(redis_cli(port, &["GET", "k"]).trim(), "v");
    assert_eq!(redis_cli(port, &["INCR", "n"]).trim(), "1");
    assert_eq!(redis_cli(port, &["INCRBY", "n", "41"]).trim(), "42");
    assert_eq!(redis_cli(port, &["DEL", "k"]).trim(), "1");
    assert_eq!(redis_cli(port, &["EXISTS", "k"]).trim(), "0");
    assert!(redis_cli(port, &["INFO", "replication"]).contains("role:master"));
    // RESP3: redis-cli -3 sends HELLO 3 first.
    assert_eq!(redis_cli(port, &["-3", "GET", "n"]).trim(), "42");
    // Without a terminal redis-cli prints a nil as an empty line.
    assert_eq!(redis_cli(port, &["-3", "GET", "nope"]).trim(), "");
    // An interactive-style session through stdin (redis-cli asks COMMAND DOCS first).
    let mut session = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-cli runs");
    {
        use std::io::Write;
        let mut stdin = session.stdin.take().expect("stdin");
        stdin
            .write_all(b"SET s 1\nINCR s\nGET s\nROLE\n")
            .expect("write to redis-cli");
    }
    let output = session.wait_with_output().expect("redis-cli ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains("OK") && stdout.contains('2') && stdout.contains("master"),
        "{stdout}"
    );
}

#[test]
fn redis_benchmark_completes_without_errors_against_each_member() {
    need("redis-benchmark");
    let group = Group::start_all(3, &["--log-sync", "none"]);
    for member in &group.members {
        let mut child = Command::new("redis-benchmark")
            .arg("-p")
            .arg(member.client.port().to_string())
            .args([
                "-t",
                "set,get,incr",
                "-n",
                "100000",
                "-c",
                "50",
                "-q",
                "--csv",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("redis-benchmark runs");
        let started = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if started.elapsed() > BENCHMARK_WAIT {
                let _ = child.kill();
                group.dump_logs();
                panic!(
                    "redis-benchmark against member {} did not finish within {BENCHMARK_WAIT:?}",
                    member.index
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let output = child.wait_with_output().expect("output");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "member {}: {stdout}\n{stderr}",
            member.index
        );
        let report = format!("{stdout}\n{stderr}");
        for bad in ["Error", "ERR", "WARNING", "CONFLICT"] {
            assert!(
                !report.contains(bad),
                "member {}: redis-benchmark said {bad}:\n{report}",
                member.index
            );
        }
        for test in ["\"SET\"", "\"GET\"", "\"INCR\""] {
            assert!(
                stdout.contains(test),
                "member {}: no {test} row:\n{stdout}",
                member.index
            );
        }
        eprintln!("member {}:\n{stdout}", member.index);
    }
}

#[test]
fn group_leave_removes_the_member() {
    let group = Group::start_all(3, &["--log-sync", "none"]);
    let mut leaving = connect(&group, 2);
    let () = redis::cmd("GROUP")
        .arg("LEAVE")
        .query(&mut leaving)
        .expect("GROUP LEAVE");
    let mut staying = connect(&group, 0);
    wait_until("member 0 sees 2 members", WAIT, || {
        group.members[0].sees_online(2)
    });
    let status: String = redis::cmd("GROUP")
        .arg("STATUS")
        .query(&mut staying)
        .expect("STATUS");
    let status: serde_json::Value = serde_json::from_str(&status).expect("JSON");
    assert_eq!(status["status"], "OK_NO_TOLERANCE", "{status}");
    assert_eq!(status["membersOnline"], 2);
    let () = staying.set("after", "leave").expect("the group goes on");
}

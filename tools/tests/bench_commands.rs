//! The benchmark faces against real processes: a deep RESP pipeline is answered in full
//! and in order, `tutti load` in both modes reports what it measured beside the loopback
//! baseline, and `tutti bench baseline` writes its table and JSON.

mod support;

use std::process::Command;
use std::sync::Mutex;

use redis_protocol::resp2::types::OwnedFrame;
use support::Group;

/// More commands than the server runs per batch (`PIPELINE_COMMANDS_MAX`, 4096) in one
/// write that fits one read (about 62 KB, under the server's 64 KiB read buffer): the
/// complete commands left after the first batch must be run without waiting for more
/// input, or the client waits for their replies forever.
const PINGS: usize = 4400;
const PROPOSALS: usize = 20;

/// These tests run one at a time: the members' ports are picked free and bound a moment
/// later, and a loopback baseline binding an ephemeral port in between could take one.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn a_pipeline_longer_than_one_batch_is_answered_in_full_and_in_order() {
    let _serial = one_at_a_time();
    let group = Group::start_all(1, &[]);
    let mut client = group.members[0].client();
    let ping: &[&[u8]] = &[b"PING"];
    let propose: &[&[u8]] = &[b"GROUP", b"PROPOSE", b"pipelined"];
    let quit: &[&[u8]] = &[b"QUIT"];
    let mut commands = vec![ping; PINGS];
    commands.extend(std::iter::repeat_n(propose, PROPOSALS));
    commands.push(quit);
    client.send(&commands).expect("pipeline written");
    for index in 0..PINGS {
        let reply = client.read_reply().expect("a PING reply");
        assert_eq!(
            reply,
            OwnedFrame::SimpleString(b"PONG".to_vec()),
            "reply {index}"
        );
    }
    let mut last = 0;
    for index in 0..PROPOSALS {
        match client.read_reply().expect("a PROPOSE reply") {
            OwnedFrame::Integer(seqno) => {
                let seqno = u64::try_from(seqno).expect("positive seqno");
                assert!(seqno > last, "proposal {index}: seqno {seqno} after {last}");
                last = seqno;
            }
            other => panic!("proposal {index}: {other:?}"),
        }
    }
    assert_eq!(
        client.read_reply().expect("the QUIT reply"),
        OwnedFrame::SimpleString(b"OK".to_vec())
    );
    assert!(client.read_reply().is_err(), "the server closes after QUIT");
}

#[test]
fn load_reports_both_modes_beside_the_baseline() {
    let _serial = one_at_a_time();
    let group = Group::start_all(3, &["--log-sync", "none"]);
    group.wait_all_online();
    let addrs: Vec<String> = group.members.iter().map(|m| m.client.to_string()).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    for (mode, value) in [("--rate", "300"), ("--window", "16")] {
        let json = dir.path().join("load.json");
        let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
            .args(["load", "--addrs", &addrs.join(","), mode, value])
            .args(["--duration", "1s", "--baseline", "--json"])
            .arg(&json)
            .output()
            .expect("tutti load runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{mode}: {stdout}");
        assert!(
            stdout.contains("latency / loopback round trip p50"),
            "{stdout}"
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
                .expect("valid json");
        let delivered = report["delivered"].as_u64().expect("delivered");
        assert!(delivered > 0, "{report}");
        assert_eq!(report["errors"].as_u64(), Some(0), "{report}");
        assert!(
            report["latency_us"]["p50"].as_u64().expect("p50") > 0,
            "{report}"
        );
        let rtt = report["baseline_round_trip"]["p50_us"]
            .as_f64()
            .expect("baseline");
        assert!(rtt > 0.0, "{report}");
        // The paced baseline belongs to the open loop only.
        assert_eq!(
            report["baseline_round_trip_paced"].is_null(),
            mode == "--window",
            "{report}"
        );
    }
}

#[test]
fn bench_baseline_prints_a_table_and_writes_json() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("baseline.json");
    let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["bench", "baseline", "--round-trips", "2000"])
        .args(["--stream-duration", "200ms", "--json"])
        .arg(&json)
        .output()
        .expect("tutti bench baseline runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("round trip") && stdout.contains("streaming"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
            .expect("valid json");
    assert_eq!(report["round_trip"]["count"].as_u64(), Some(2000));
    assert!(report["round_trip"]["p50_us"].as_f64().expect("p50") > 0.0);
    assert!(
        report["throughput"]["messages_per_second"]
            .as_f64()
            .expect("messages/s")
            > 0.0
    );
}

#[test]
fn bench_run_measures_an_in_process_group_and_compare_reads_two_reports() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("run.json");
    let hgrm = dir.path().join("run.hgrm");
    let svg = dir.path().join("run.svg");
    let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["bench", "run", "--members", "3", "--workload", "rmw"])
        .args(["--distribution", "hotset:100:0.5", "--keys", "1000"])
        .args(["--clients", "8", "--duration", "2s", "--warmup", "200ms"])
        .args(["--log-sync", "none", "--quiet", "--json"])
        .arg(&json)
        .arg("--hgrm")
        .arg(&hgrm)
        .arg("--svg")
        .arg(&svg)
        .output()
        .expect("tutti bench run runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("committed/s") && stdout.contains("loopback baseline"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
            .expect("valid json");
    let config = &report["config"];
    assert_eq!(config["members"].as_u64(), Some(3), "{report}");
    assert_eq!(config["workload"].as_str(), Some("rmw"));
    assert_eq!(config["log_sync"].as_str(), Some("none"));
    assert_eq!(config["io_backend"].as_str(), Some("auto"));
    assert_eq!(config["mode"].as_str(), Some("multi"));
    assert_eq!(config["isolation"].as_str(), Some("command"));
    assert_eq!(config["distribution"].as_str(), Some("hotset:100:0.5"));
    let committed = report["committed"].as_u64().expect("committed");
    assert!(committed > 100, "{report}");
    assert_eq!(report["failed"].as_u64(), Some(0), "{report}");
    assert!(report["commit_latency_us"]["p99"].as_u64().expect("p99") > 0);
    assert!(
        report["baseline"]["round_trip_p50_us"]
            .as_f64()
            .expect("rtt")
            > 0.0
    );
    let after = report["members_after"].as_array().expect("member stats");
    assert_eq!(after.len(), 3, "{report}");
    let hgrm_text = std::fs::read_to_string(&hgrm).expect("hgrm written");
    assert!(
        hgrm_text.contains("Percentile") && hgrm_text.contains("#[Max"),
        "{hgrm_text}"
    );
    let svg_text = std::fs::read_to_string(&svg).expect("svg written");
    assert!(
        svg_text.starts_with("<svg") && svg_text.contains("polyline"),
        "svg"
    );

    // A second report, as if from another run, with twice the throughput.
    let mut doubled = report.clone();
    let rate = report["committed_per_s"].as_f64().expect("rate");
    doubled["committed_per_s"] = serde_json::json!(rate * 2.0);
    doubled["config"]["clients"] = serde_json::json!(16);
    let other = dir.path().join("other.json");
    std::fs::write(&other, doubled.to_string()).expect("written");
    let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["bench", "compare"])
        .arg(&json)
        .arg(&other)
        .output()
        .expect("tutti bench compare runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let line = stdout
        .lines()
        .find(|line| line.starts_with("committed/s"))
        .expect("a committed/s row");
    assert!(line.trim_end().ends_with("2.00"), "{line}");
    assert!(stdout.contains("clients: 8 -> 16"), "{stdout}");

    // Not a report: refused, naming the file.
    let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["bench", "compare"])
        .arg(&json)
        .arg(&hgrm)
        .output()
        .expect("tutti bench compare runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("run.hgrm"));
}

#[test]
fn bench_run_refuses_bad_modes_unknown_levels_and_netem_with_a_reason() {
    for (flags, expected) in [
        (["--mode", "sideways"], "use single or multi"),
        (["--consistency", "SOMETIMES"], "is not a consistency level"),
        (["--netem", "10ms"], "not built yet"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
            .args(["bench", "run"])
            .args(flags)
            .output()
            .expect("tutti bench run runs");
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[test]
fn bench_run_measures_a_single_primary_group_at_a_consistency_level() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("single.json");
    let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .args(["bench", "run", "--members", "3", "--mode", "single"])
        .args([
            "--consistency",
            "BEFORE",
            "--workload",
            "write",
            "--keys",
            "1000",
        ])
        .args(["--clients", "4", "--duration", "1s", "--warmup", "200ms"])
        .args(["--log-sync", "none", "--quiet", "--no-baseline", "--json"])
        .arg(&json)
        .output()
        .expect("tutti bench run runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
            .expect("valid json");
    assert_eq!(report["config"]["mode"].as_str(), Some("single"));
    assert_eq!(report["config"]["consistency"].as_str(), Some("BEFORE"));
    assert!(
        report["committed"].as_u64().expect("committed") > 20,
        "{report}"
    );
    assert_eq!(
        report["failed"].as_u64(),
        Some(0),
        "every client wrote to the primary: {report}"
    );
}

//! Start-up rules of `tutti server`: an invalid configuration is refused before anything
//! starts, naming the option; a member that reaches no seed and was not told to
//! bootstrap waits, says so, and never forms a group of its own.

mod support;

use std::process::Command;

use support::{free_port, wait_until, Group, WAIT};

#[test]
fn invalid_options_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&[&str], &str); 4] = [
        (&["--member-weight", "101"], "member_weight"),
        (&["--log-sync", "sometimes"], "log_sync"),
        (&["--io-backend", "kqueue"], "io_backend"),
        (&["--suspicion-timeout", "50ms"], "suspicion_timeout"),
    ];
    for (args, option) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
            .args([
                "server",
                "--group-name",
                "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa",
                "--data-dir",
            ])
            .arg(dir.path())
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(output.status.code(), Some(2), "{args:?} exits 2");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(option),
            "{args:?}: the error names {option}: {stderr}"
        );
    }
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "group_name = \"aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa\"\ndata_dir = \"/tmp/x\"\nmember_wieght = 3\n").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_tutti"))
        .arg("server")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("member_wieght"),
        "an unknown key is named"
    );
}

#[test]
fn a_member_without_a_reachable_seed_waits_and_never_forms_a_group() {
    let mut group = Group::new(1, &[]);
    let member = &mut group.members[0];
    member.bootstrap = false;
    member.seeds = vec![std::net::SocketAddr::from(([127, 0, 0, 1], free_port()))];
    member.start();
    wait_until("the member says it waits for a seed", WAIT, || {
        member.log_text().contains("no seed has answered yet")
    });
    let rows = member.members().expect("members table");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, "OFFLINE", "{rows:?}");
    let refused = member.client().propose(b"nobody orders this");
    assert!(refused.is_err(), "no group, no order: {refused:?}");
}

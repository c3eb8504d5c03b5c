//! Consistency levels on real `tutti server` processes. One member applies slowly (the
//! test-only `applier_delay`), so the window in which it has not applied a commit yet is
//! wide: EVENTUAL shows the window, BEFORE, AFTER and `BEFORE_AND_AFTER` close it; an AFTER
//! commit that a stopped member cannot acknowledge says it committed, and once that member
//! is expelled it is dropped from the wait.

mod support;

use std::time::{Duration, Instant};

use support::{reply, signal, wait_until, Group, WAIT};
use tutti::client::RespClient;

/// How long the slow member sleeps per transaction it applies.
const APPLIER_DELAY: Duration = Duration::from_millis(400);

fn set_level(client: &mut RespClient, level: &str) {
    assert_eq!(
        reply(client, &[b"CLIENT", b"CONSISTENCY", level.as_bytes()]).as_deref(),
        Some("OK")
    );
}

fn get(client: &mut RespClient, key: &str) -> Option<String> {
    reply(client, &[b"GET", key.as_bytes()])
}

/// A slow third member: its applier sleeps `APPLIER_DELAY` per transaction.
fn group_with_slow_member(extra: &[&str]) -> Group {
    let mut args = vec!["--log-sync", "none"];
    args.extend_from_slice(extra);
    let mut group = Group::new(3, &args);
    group.members[2]
        .extra_args
        .push(format!("--applier-delay={}ms", APPLIER_DELAY.as_millis()));
    for member in &mut group.members {
        member.start();
    }
    group.wait_all_online();
    group
}

#[test]
fn before_and_after_close_the_window_a_slow_member_leaves_open() {
    let group = group_with_slow_member(&[]);
    let mut writer = group.members[0].client();
    let mut slow = group.members[2].client();

    // EVENTUAL: the slow member has not applied the commit yet.
    set_level(&mut writer, "EVENTUAL");
    set_level(&mut slow, "EVENTUAL");
    assert_eq!(
        reply(&mut writer, &[b"SET", b"k0", b"v0"]).as_deref(),
        Some("OK")
    );
    assert_eq!(
        get(&mut slow, "k0").as_deref(),
        Some(""),
        "the window is open"
    );

    // AFTER: the commit returns once every member applied it.
    set_level(&mut writer, "AFTER");
    let started = Instant::now();
    assert_eq!(
        reply(&mut writer, &[b"SET", b"k1", b"v1"]).as_deref(),
        Some("OK")
    );
    assert!(
        started.elapsed() >= APPLIER_DELAY / 2,
        "an AFTER commit waits for the slow member ({:?})",
        started.elapsed()
    );
    assert_eq!(get(&mut slow, "k1").as_deref(), Some("v1"));
    // A read-only transaction does not wait at AFTER.
    assert_eq!(get(&mut writer, "k1").as_deref(), Some("v1"));

    // BEFORE: a read on the slow member first waits for everything ordered before it.
    set_level(&mut writer, "EVENTUAL");
    assert_eq!(
        reply(&mut writer, &[b"SET", b"k2", b"v2"]).as_deref(),
        Some("OK")
    );
    set_level(&mut slow, "BEFORE");
    assert_eq!(get(&mut slow, "k2").as_deref(), Some("v2"));

    // BEFORE_AND_AFTER, through another member.
    let mut second = group.members[1].client();
    set_level(&mut second, "BEFORE_AND_AFTER");
    assert_eq!(
        reply(&mut second, &[b"SET", b"k3", b"v3"]).as_deref(),
        Some("OK")
    );
    set_level(&mut slow, "EVENTUAL");
    assert_eq!(get(&mut slow, "k3").as_deref(), Some("v3"));

    // The level is per connection; CONFIG SET changes the member's default.
    let mut fresh = group.members[0].client();
    assert_eq!(
        reply(&mut fresh, &[b"CONFIG", b"SET", b"consistency", b"after"]).as_deref(),
        Some("OK")
    );
    let mut later = group.members[0].client();
    assert_eq!(
        reply(&mut later, &[b"SET", b"k4", b"v4"]).as_deref(),
        Some("OK")
    );
    assert_eq!(get(&mut slow, "k4").as_deref(), Some("v4"));
}

#[test]
fn an_after_wait_that_ends_says_committed_and_a_member_that_leaves_is_dropped() {
    let mut group = group_with_slow_member(&[
        "--wait-timeout",
        "1500ms",
        "--suspicion-timeout",
        "1s",
        "--member-expel-timeout",
        "2s",
    ]);
    let mut writer = group.members[0].client();
    set_level(&mut writer, "AFTER");
    assert_eq!(
        reply(&mut writer, &[b"SET", b"a", b"1"]).as_deref(),
        Some("OK")
    );

    let stopped = group.members[2].child.as_ref().expect("running").id();
    signal(stopped, libc::SIGSTOP);
    let answer = reply(&mut writer, &[b"SET", b"a", b"2"]).expect("an answer");
    assert!(
        answer.starts_with("TIMEOUT committed at seqno")
            && answer.contains("not yet applied everywhere"),
        "{answer}"
    );
    // It did commit: the other members have it.
    let mut other = group.members[1].client();
    set_level(&mut other, "BEFORE");
    assert_eq!(get(&mut other, "a").as_deref(), Some("2"));

    // Once the stopped member is expelled, AFTER no longer waits for it.
    wait_until("the stopped member is expelled", WAIT, || {
        group.members[0]
            .members()
            .is_some_and(|members| members.len() == 2)
    });
    let started = Instant::now();
    assert_eq!(
        reply(&mut writer, &[b"SET", b"a", b"3"]).as_deref(),
        Some("OK")
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    signal(stopped, libc::SIGCONT);
    group.members[2].kill9();
}

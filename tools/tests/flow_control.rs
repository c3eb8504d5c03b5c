//! Flow control on real `tutti server` processes: one member applies slowly (the
//! test-only `applier_delay`). With QUOTA its applier queue stays bounded near the
//! threshold while the primary's writers are throttled to what it applies; with DISABLED
//! the same run lets its queue grow.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{reply, Group};
use tutti::client::RespClient;

const THRESHOLD: u64 = 300;
const WRITE_FOR: Duration = Duration::from_secs(8);

/// What one run saw.
struct Run {
    /// The largest queue in the second half of the run, once flow control has reacted.
    max_late: u64,
    committed: u64,
    primary_stats: Vec<(String, String)>,
}

fn member_stat(group: &Group, index: usize, column: &str) -> Option<u64> {
    let rows = group.members[index]
        .try_client()?
        .table(&[b"GROUP", b"MEMBER-STATS"])
        .ok()?;
    rows.first()?
        .iter()
        .find(|(name, _)| name == column)
        .and_then(|(_, value)| value.parse().ok())
}

fn run(mode: &str) -> Run {
    let threshold = THRESHOLD.to_string();
    let mut group = Group::new(
        3,
        &[
            "--log-sync",
            "none",
            "--single-primary-mode=true",
            "--flow-control-mode",
            mode,
            "--flow-control-period",
            "250ms",
            "--flow-control-applier-threshold",
            &threshold,
        ],
    );
    group.members[2]
        .extra_args
        .push("--applier-delay=2ms".to_owned());
    for member in &mut group.members {
        member.start();
        std::thread::sleep(Duration::from_millis(200));
    }
    group.wait_all_online();
    assert_eq!(group.primary(1), Some(0));
    let primary = group.members[0].client.to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let (stop, committed, primary) =
                (Arc::clone(&stop), Arc::clone(&committed), primary.clone());
            std::thread::spawn(move || {
                let mut client =
                    RespClient::connect(&primary, Duration::from_secs(30)).expect("connect");
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{writer}-{n}");
                    let answer = reply(&mut client, &[b"SET", key.as_bytes(), b"v"]);
                    assert_eq!(
                        answer.as_deref(),
                        Some("OK"),
                        "a throttled write waits, it does not fail"
                    );
                    committed.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    let started = Instant::now();
    let (mut max_queue, mut max_late) = (0, 0);
    while started.elapsed() < WRITE_FOR {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(queue) = member_stat(&group, 2, "COUNT_TRANSACTIONS_REMOTE_IN_APPLIER_QUEUE") {
            max_queue = max_queue.max(queue);
            if started.elapsed() > WRITE_FOR / 2 {
                max_late = max_late.max(queue);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().expect("writer");
    }
    let primary_stats = group.members[0].stats().expect("GROUP STATS");
    eprintln!(
        "flow control {mode}: slow member's applier queue at most {max_queue}, {max_late} in the second half (threshold {THRESHOLD}); {} writes committed in {WRITE_FOR:?}; primary: {:?}",
        committed.load(Ordering::Relaxed),
        primary_stats
            .iter()
            .filter(|(name, _)| name.starts_with("flow_control"))
            .collect::<Vec<_>>()
    );
    Run {
        max_late,
        committed: committed.load(Ordering::Relaxed),
        primary_stats,
    }
}

fn stat<'a>(stats: &'a [(String, String)], name: &str) -> &'a str {
    stats
        .iter()
        .find(|(key, _)| key == name)
        .map_or("", |(_, value)| value.as_str())
}

#[test]
fn quota_keeps_a_slow_members_queue_bounded_and_disabled_lets_it_grow() {
    let quota = run("QUOTA");
    let disabled = run("DISABLED");
    // Before the first reports the queue overshoots (a period or two of the full write
    // rate); once throttled it stays within a few thresholds (the quota is released by
    // half each period it is below, and overshoots a little again).
    assert!(
        quota.max_late < 10 * THRESHOLD,
        "QUOTA: the slow member's queue was {} in the second half",
        quota.max_late
    );
    assert!(
        disabled.max_late > 10 * quota.max_late.max(THRESHOLD),
        "DISABLED: the queue reached {} only, against {} with QUOTA",
        disabled.max_late,
        quota.max_late
    );
    assert!(quota.committed > 0 && disabled.committed > quota.committed);
    let waits: u64 = stat(&quota.primary_stats, "flow_control_throttled_waits")
        .parse()
        .unwrap_or(0);
    assert!(
        waits > 0,
        "the primary's writers were throttled: {:?}",
        quota.primary_stats
    );
    assert_eq!(stat(&quota.primary_stats, "flow_control_mode"), "QUOTA");
    assert_eq!(
        stat(&disabled.primary_stats, "flow_control_mode"),
        "DISABLED"
    );
    assert_eq!(
        stat(&disabled.primary_stats, "flow_control_throttled_waits"),
        "0"
    );
}

//! kill -9 of the sequencer under load: the other two install a new view within a few
//! seconds and keep delivering; the killed member restarts on its data directory, comes
//! back ONLINE and holds the same delivered prefix as the others.

mod support;

use std::time::{Duration, Instant};

use support::{wait_until, Group, WAIT};

/// How fast the survivors must install a new view.
const NEW_VIEW_WITHIN: Duration = Duration::from_secs(5);

#[test]
fn killed_sequencer_is_replaced_and_rejoins_with_the_same_prefix() {
    // The killed member comes back before it would be expelled (as a crashed member
    // usually does); expel and rejoin are another scenario.
    let mut group = Group::start_all(3, &["--member-expel-timeout", "60s"]);
    let sequencer = group.sequencer().expect("a sequencer is known");
    let survivors: Vec<usize> = (0..3).filter(|index| *index != sequencer).collect();
    let old_view: u64 = group.members[survivors[0]]
        .stat("view")
        .and_then(|v| v.parse().ok())
        .expect("view");
    let addrs: Vec<_> = survivors
        .iter()
        .map(|index| group.members[*index].client)
        .collect();
    let load =
        std::thread::spawn(move || tutti::load::run_load(&addrs, 400, Duration::from_secs(6), 64));
    std::thread::sleep(Duration::from_secs(1));
    let before_kill = group.members[survivors[0]]
        .last_delivered()
        .expect("delivered");
    group.members[sequencer].kill9();
    let killed_at = Instant::now();
    for index in &survivors {
        let member = &group.members[*index];
        wait_until(
            &format!("member {index} installs a view after {old_view}"),
            NEW_VIEW_WITHIN,
            || {
                member
                    .stat("view")
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|view| view > old_view)
                    && member.stat("sequencer").is_some_and(|s| !s.is_empty())
            },
        );
    }
    let view_change = killed_at.elapsed();
    let report = load.join().expect("load thread").expect("load ran");
    assert!(report.delivered > 0, "the load was delivered: {report:?}");
    let after = group.members[survivors[0]]
        .last_delivered()
        .expect("delivered");
    assert!(
        after > before_kill + 100,
        "delivery went on after the kill: {before_kill} -> {after} ({report:?})"
    );
    eprintln!("new view after {view_change:?}; load {report:?}");

    group.members[sequencer].start();
    group.wait_all_online();
    // ONLINE comes before the restarted member has delivered its whole log again (it
    // redelivers from seqno 1 and then catches up from the group): wait, bounded, until
    // every member holds at least the prefix delivered before the restart.
    let common = || {
        group
            .members
            .iter()
            .map(|member| member.last_delivered().unwrap_or(0))
            .min()
            .unwrap_or(0)
    };
    wait_until("the restarted member catches up", WAIT, || {
        common() >= after
    });
    let common = common();
    let digests: Vec<String> = group
        .members
        .iter()
        .map(|member| member.digest_at(common).expect("digest"))
        .collect();
    assert!(
        digests.windows(2).all(|pair| pair[0] == pair[1]),
        "prefix digests at {common} differ: {digests:?}"
    );
    let seqno = group.members[sequencer]
        .client()
        .propose(b"after the restart")
        .expect("delivered");
    assert!(seqno > common);
    wait_until("everyone delivers the new proposal", WAIT, || {
        group
            .members
            .iter()
            .all(|member| member.last_delivered().is_some_and(|last| last >= seqno))
    });
}

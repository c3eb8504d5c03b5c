//! kill -9 of one member of five: the other four keep delivering, agree on the order,
//! and the sequencer expels the dead member after `member_expel_timeout`.

mod support;

use std::time::Duration;

use support::{wait_until, Group, WAIT};

#[test]
fn four_of_five_keep_delivering_after_a_kill() {
    let mut group = Group::start_all(5, &["--member-expel-timeout", "3s"]);
    let sequencer = group.sequencer().expect("a sequencer is known");
    // Kill a member that is not the sequencer: the group must not even change views.
    let victim = (0..5)
        .rev()
        .find(|index| *index != sequencer)
        .expect("a victim");
    let survivors: Vec<usize> = (0..5).filter(|index| *index != victim).collect();
    group.members[victim].kill9();
    let addrs: Vec<_> = survivors
        .iter()
        .map(|index| group.members[*index].client)
        .collect();
    let report = tutti::load::run_load(&addrs, 400, Duration::from_secs(3), 64).expect("load ran");
    assert_eq!(
        report.errors, 0,
        "every proposal through a survivor was delivered: {report:?}"
    );
    assert_eq!(report.delivered, report.sent);
    let last = report.last_seqno.iter().copied().max().expect("seqnos");
    for index in &survivors {
        let member = &group.members[*index];
        wait_until(
            &format!("member {index} shows 4 members ONLINE (the dead one expelled)"),
            WAIT,
            || member.sees_online(4),
        );
        wait_until(&format!("member {index} delivered {last}"), WAIT, || {
            member.last_delivered().is_some_and(|s| s >= last)
        });
    }
    let digests: Vec<String> = survivors
        .iter()
        .map(|index| group.members[*index].digest_at(last).expect("digest"))
        .collect();
    assert!(
        digests.windows(2).all(|pair| pair[0] == pair[1]),
        "prefix digests at {last} differ: {digests:?}"
    );
}

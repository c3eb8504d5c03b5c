//! A member killed and expelled comes back on its data directory and rejoins the group,
//! as a restarted Group Replication member does.

mod support;

use support::{wait_until, Group, WAIT};

/// The restarted member delivers its log again from seqno 1, meets the `Expel` of its
/// previous incarnation, and asks to join again (auto-rejoin) instead of stopping.
#[test]
fn an_expelled_member_restarts_and_rejoins() {
    let mut group = Group::start_all(3, &["--member-expel-timeout", "2s"]);
    let sequencer = group.sequencer().expect("a sequencer is known");
    let victim = (0..3)
        .rev()
        .find(|index| *index != sequencer)
        .expect("a victim");
    group.members[victim].kill9();
    for member in group.members.iter().filter(|member| member.index != victim) {
        wait_until(
            &format!("member {} expels the dead member", member.index),
            WAIT,
            || member.sees_online(2),
        );
    }
    let seqno = group.members[sequencer]
        .client()
        .propose(b"while it was away")
        .expect("delivered");
    group.members[victim].start();
    group.wait_all_online();
    let member = &group.members[victim];
    wait_until("the rejoined member delivers what it missed", WAIT, || {
        member.last_delivered().is_some_and(|last| last >= seqno)
    });
    assert_eq!(
        member.digest_at(seqno),
        group.members[sequencer].digest_at(seqno)
    );
}

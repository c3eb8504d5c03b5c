//! The whole group stops (kill -9, or SIGTERM with a voluntary leave) and starts again
//! on the same data directories: it resumes with every delivered message (the digests
//! of the old prefix match) and delivers new proposals.

mod support;

use std::time::Duration;

use support::{wait_until, Group, WAIT};

fn propose_some(group: &Group, count: usize) -> u64 {
    let mut last = 0;
    for round in 0..count {
        let member = &group.members[round % group.members.len()];
        last = last.max(
            member
                .client()
                .propose(format!("message {round}").as_bytes())
                .expect("delivered"),
        );
    }
    for member in &group.members {
        wait_until(
            &format!("member {} delivered {last}", member.index),
            WAIT,
            || member.last_delivered().is_some_and(|seqno| seqno >= last),
        );
    }
    last
}

fn resume_and_check(group: &mut Group, last: u64, digest: &str) {
    for member in &mut group.members {
        member.start();
    }
    group.wait_all_online();
    for member in &group.members {
        wait_until(
            &format!("member {} delivered the old prefix again", member.index),
            WAIT,
            || member.last_delivered().is_some_and(|seqno| seqno >= last),
        );
        assert_eq!(
            member.digest_at(last).as_deref(),
            Some(digest),
            "member {} lost or changed the old prefix",
            member.index
        );
    }
    let new_last = propose_some(group, 9);
    assert!(
        new_last > last,
        "new proposals are ordered after the old prefix"
    );
    let digests: Vec<String> = group
        .members
        .iter()
        .map(|member| member.digest_at(new_last).expect("digest"))
        .collect();
    assert!(
        digests.windows(2).all(|pair| pair[0] == pair[1]),
        "digests at {new_last} differ: {digests:?}"
    );
}

#[test]
fn group_resumes_after_every_member_is_killed() {
    let mut group = Group::start_all(3, &[]);
    let last = propose_some(&group, 30);
    let digest = group.members[0].digest_at(last).expect("digest");
    for member in &mut group.members {
        member.kill9();
    }
    resume_and_check(&mut group, last, &digest);
}

/// Every member leaves the group on SIGTERM. Restarted on the same data directories, a
/// member delivers its log again from seqno 1 and meets its own old `Leave` entry: it
/// must ask to join again rather than stop, and the group must resume.
#[test]
fn group_resumes_after_every_member_is_stopped_cleanly() {
    let mut group = Group::start_all(3, &[]);
    let last = propose_some(&group, 30);
    let digest = group.members[0].digest_at(last).expect("digest");
    for member in &mut group.members {
        assert_eq!(
            member.terminate(Duration::from_secs(15)),
            Some(0),
            "member {} exits 0 on SIGTERM",
            member.index
        );
    }
    resume_and_check(&mut group, last, &digest);
}

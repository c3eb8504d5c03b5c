//! A three-member group forms on loopback, every member shows every member ONLINE, and
//! proposals through any member are delivered everywhere in one order.

mod support;

use support::{wait_until, Group, WAIT};

#[test]
fn three_members_form_a_group_and_agree_on_the_order() {
    let group = Group::start_all(3, &[]);
    let mut seqnos = Vec::new();
    for member in &group.members {
        let mut client = member.client();
        for round in 0..5 {
            let payload = format!("member {} round {round}", member.index);
            seqnos.push(
                client
                    .propose(payload.as_bytes())
                    .expect("proposal delivered"),
            );
        }
    }
    let mut sorted = seqnos.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        seqnos.len(),
        "every proposal got its own seqno: {seqnos:?}"
    );
    let last = *sorted.last().expect("proposals were made");
    for member in &group.members {
        wait_until(
            &format!("member {} delivered seqno {last}", member.index),
            WAIT,
            || member.last_delivered().is_some_and(|seqno| seqno >= last),
        );
    }
    let digests: Vec<String> = group
        .members
        .iter()
        .map(|member| member.digest_at(last).expect("digest"))
        .collect();
    assert!(
        digests.windows(2).all(|pair| pair[0] == pair[1]),
        "the delivered prefixes differ: {digests:?}"
    );
    let connections = group.members[0]
        .client()
        .table(&[b"GROUP", b"CONNECTIONS"])
        .expect("connections table");
    assert_eq!(
        connections.len(),
        2,
        "member 0 has one connection row per peer: {connections:?}"
    );
    for row in &connections {
        let state = row
            .iter()
            .find(|(column, _)| column == "STATE")
            .map(|(_, value)| value.as_str());
        assert_eq!(state, Some("CONNECTED"), "{row:?}");
    }
}

#[test]
fn a_group_without_synced_appends_still_orders_and_delivers() {
    let group = Group::start_all(3, &["--log-sync", "interval:10"]);
    let mut client = group.members[2].client();
    let first = client.propose(b"one").expect("delivered");
    let second = client.propose(b"two").expect("delivered");
    assert!(second > first);
    for member in &group.members {
        wait_until(
            &format!("member {} delivered {second}", member.index),
            WAIT,
            || member.last_delivered().is_some_and(|seqno| seqno >= second),
        );
    }
    let digests: Vec<String> = group
        .members
        .iter()
        .map(|member| member.digest_at(second).expect("digest"))
        .collect();
    assert!(
        digests.windows(2).all(|pair| pair[0] == pair[1]),
        "{digests:?}"
    );
}

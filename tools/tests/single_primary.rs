//! Single-primary mode on real `tutti server` processes: one elected primary takes
//! writes and the secondaries answer `-READONLY ...; primary is host:port`; SET-PRIMARY
//! and SWITCH-MODE are ordered operations; the election follows the weight; versions
//! older than the group are refused while newer ones are read-only. (kill -9 of the
//! primary under load: `primary_failover.rs`, a binary of its own so that its timing is
//! not shared with other groups.)

mod support;

use std::time::Duration;

use support::{reply, wait_until, Group, WAIT};
use tutti::client::RespClient;

const SINGLE: &str = "--single-primary-mode=true";

fn set(client: &mut RespClient, key: &str, value: &str) -> String {
    reply(client, &[b"SET", key.as_bytes(), value.as_bytes()]).expect("SET answered")
}

fn command(group: &Group, index: usize, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    reply(&mut group.members[index].client(), &args).expect("answered")
}

fn member_id(group: &Group, index: usize) -> String {
    group.members[index].stat("member_id").expect("member id")
}

#[test]
fn secondaries_refuse_writes_with_the_primary_and_role_operations_are_ordered() {
    let group = Group::start_all(3, &["--log-sync", "none", SINGLE]);
    assert_eq!(
        group.members[1].stat("mode").as_deref(),
        Some("single-primary")
    );
    assert_eq!(
        group.primary(2),
        Some(0),
        "the bootstrapping member is the first primary"
    );
    let mut first = group.members[0].client();
    assert_eq!(set(&mut first, "k", "from-primary"), "OK");
    let refused = set(&mut group.members[1].client(), "k", "from-secondary");
    assert!(
        refused.starts_with("READONLY")
            && refused.ends_with(&format!("primary is {}", group.members[0].client)),
        "{refused}"
    );
    group.wait_same_store();
    assert_eq!(
        command(&group, 2, &["GET", "k"]),
        "from-primary",
        "reads work everywhere"
    );
    let role = command(&group, 1, &["ROLE"]);
    assert!(
        role.contains("slave") && role.contains(&group.members[0].client.port().to_string()),
        "{role}"
    );

    // SET-PRIMARY: the old primary refuses from then on, the new one takes writes.
    let second = member_id(&group, 1);
    assert_eq!(command(&group, 2, &["GROUP", "SET-PRIMARY", &second]), "OK");
    wait_until("every member names member 1 primary", WAIT, || {
        (0..3).all(|index| group.primary(index) == Some(1))
    });
    // The sequencer follows the primary (a voluntary view change).
    wait_until("member 1 is the sequencer", WAIT, || {
        group.sequencer() == Some(1)
    });
    let refused = set(&mut first, "k", "from-old-primary");
    assert!(
        refused.contains(&format!("primary is {}", group.members[1].client)),
        "{refused}"
    );
    assert_eq!(
        set(&mut group.members[1].client(), "k", "from-new-primary"),
        "OK"
    );
    let bogus = command(
        &group,
        0,
        &[
            "GROUP",
            "SET-PRIMARY",
            "00000000-0000-0000-0000-00000000beef",
        ],
    );
    assert!(bogus.contains("not in the group"), "{bogus}");
    let garbage = command(&group, 0, &["GROUP", "SET-PRIMARY", "nobody"]);
    assert!(garbage.contains("not a member UUID"), "{garbage}");

    // SWITCH-MODE MULTI: everyone writes; SWITCH-MODE SINGLE <uuid>: that member only.
    assert_eq!(command(&group, 0, &["GROUP", "SWITCH-MODE", "MULTI"]), "OK");
    wait_until("every member is writable", WAIT, || {
        group.members[2].sees_online(3)
    });
    for index in 0..3 {
        assert_eq!(
            set(
                &mut group.members[index].client(),
                "multi",
                &index.to_string()
            ),
            "OK"
        );
    }
    let third = member_id(&group, 2);
    assert_eq!(
        command(&group, 0, &["GROUP", "SWITCH-MODE", "SINGLE", &third]),
        "OK"
    );
    wait_until("member 2 is everyone's primary", WAIT, || {
        (0..3).all(|index| group.primary(index) == Some(2))
    });
    wait_until("member 2 is the sequencer", WAIT, || {
        group.sequencer() == Some(2)
    });
    assert!(set(&mut group.members[0].client(), "k", "x").starts_with("READONLY"));
    let again = command(&group, 0, &["GROUP", "SWITCH-MODE", "SINGLE", &third]);
    assert_eq!(
        again, "OK",
        "switching to the mode in force with the same primary changes nothing"
    );
    let wrong = command(&group, 0, &["GROUP", "SWITCH-MODE", "SIDEWAYS"]);
    assert!(wrong.contains("SINGLE [uuid] or MULTI"), "{wrong}");
    group.wait_same_store();
}

#[test]
fn the_election_prefers_the_highest_weight_then_the_lowest_uuid() {
    let mut group = Group::new(
        3,
        &[
            "--log-sync",
            "none",
            SINGLE,
            "--suspicion-timeout",
            "1s",
            "--member-expel-timeout",
            "2s",
        ],
    );
    for (member, weight) in group.members.iter_mut().zip([50, 90, 70]) {
        member.extra_args.push(format!("--member-weight={weight}"));
        member.start();
        std::thread::sleep(Duration::from_millis(200));
    }
    group.wait_all_online();
    assert_eq!(
        group.primary(1),
        Some(0),
        "a joiner never deposes the primary"
    );
    group.members[0].kill9();
    wait_until("the heaviest survivor is elected", WAIT, || {
        group.primary(2) == Some(1)
    });
    wait_until("the elected primary is the sequencer", WAIT, || {
        group.sequencer() == Some(1)
    });
    // The old primary comes back as a secondary: a joiner never deposes the primary.
    group.members[0].start();
    group.wait_all_online();
    assert_eq!(group.primary(0), Some(1));
}

#[test]
fn an_older_member_is_refused_and_a_newer_one_joins_read_only() {
    let mut group = Group::new(3, &["--log-sync", "none", "--single-primary-mode=false"]);
    group.members[0].start();
    group.members[1]
        .extra_args
        .push("--member-version=99.0.0".to_owned());
    group.members[1].start();
    wait_until("the newer member is ONLINE", WAIT, || {
        group.members[0]
            .member_rows(&["MEMBER_STATE", "MEMBER_VERSION", "MEMBER_ROLE"])
            .is_some_and(|rows| {
                rows.iter()
                    .any(|row| row == &["ONLINE", "99.0.0", "SECONDARY"])
            })
    });
    let refused = set(&mut group.members[1].client(), "k", "v");
    assert!(
        refused.starts_with("READONLY") && refused.contains("99.0.0"),
        "{refused}"
    );
    assert_eq!(set(&mut group.members[0].client(), "k", "v"), "OK");

    group.members[2]
        .extra_args
        .push("--member-version=0.0.1".to_owned());
    group.members[2].start();
    wait_until("the older member says why it left", WAIT, || {
        group.members[2]
            .log_text()
            .contains("below the group's lowest")
    });
    wait_until("the older member is no longer in the group", WAIT, || {
        group.members[0]
            .members()
            .is_some_and(|rows| rows.len() == 2)
    });
    // Once the older-version members are gone, the newer one takes writes.
    group.members[0].terminate(Duration::from_secs(10));
    wait_until("the newer member is writable alone", WAIT, || {
        set(&mut group.members[1].client(), "k2", "v") == "OK"
    });
}

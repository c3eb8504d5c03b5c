//! Membership: a join through the sequencer, an expel after `member_expel_timeout`.

use std::time::Duration;

use super::{config, id, sends, view, Cluster, GROUP};
use crate::gcs::{
    Command, ConfigChange, Entry, EntryBody, Gcs, Incarnation, JoinRefusal, JoinRefused,
    JoinRequest, MemberState, Message, PersistentMeta, Prepare, PrepareNack, Seqno, Status, Time,
};

#[test]
fn joiner_is_added_by_an_ordered_reconfiguration_and_catches_up() {
    let mut cluster = Cluster::formed(1);
    let mut joiner = Gcs::join(config(2), vec![id(1)], cluster.now);
    let request = JoinRequest {
        incarnation: Incarnation(1),
        joiner: id(2),
        joiner_incarnation: Incarnation(1),
        group_name: GROUP,
        version: 1,
    };
    let out: Vec<Command> = joiner.drain_commands().collect();
    assert_eq!(
        out,
        vec![
            Command::PersistMeta(PersistentMeta {
                incarnation: Incarnation(1),
                view: view(0),
                last_normal_view: view(0)
            }),
            Command::MemberStateChanged {
                member: id(2),
                state: MemberState::Recovering
            },
            Command::Send {
                to: id(1),
                msg: Message::JoinRequest(request)
            },
            Command::SetTimer {
                at: Time(cluster.now.0 + 50_000)
            },
        ]
    );
    cluster.members.push(joiner);

    // The sequencer orders the new configuration and sends it to the joiner.
    let reconfigure = Entry {
        seqno: Seqno(2),
        view: view(1),
        body: EntryBody::Reconfigure {
            members: vec![id(1), id(2)],
            change: ConfigChange::Join(id(2)),
        },
    };
    let prepare = Prepare {
        incarnation: Incarnation(1),
        view: view(1),
        first_seqno: Seqno(2),
        prev_view: view(1),
        entries: vec![reconfigure.clone()],
        commit_seqno: Seqno(1),
    };
    let out = cluster.handle(2, 1, Message::JoinRequest(request));
    assert_eq!(
        out,
        vec![
            Command::PersistEntries {
                view: view(1),
                entries: vec![reconfigure]
            },
            Command::Send {
                to: id(2),
                msg: Message::Prepare(prepare.clone())
            },
        ]
    );

    // The joiner enters the view, cannot append after an empty log, and reports the gap.
    let out = cluster.handle(1, 2, Message::Prepare(prepare));
    assert_eq!(
        out,
        vec![
            Command::PersistMeta(PersistentMeta {
                incarnation: Incarnation(1),
                view: view(1),
                last_normal_view: view(1)
            }),
            Command::ViewInstalled {
                view: view(1),
                members: vec![],
                sequencer: id(1)
            },
            Command::Send {
                to: id(1),
                msg: Message::PrepareNack(PrepareNack {
                    incarnation: Incarnation(1),
                    view: view(1),
                    match_seqno: Seqno(0)
                })
            },
        ]
    );
    // The sequencer resends from the joiner's end; everything commits once the joiner
    // (half of the new configuration) has it.
    cluster.settle();
    assert_eq!(cluster.member(2).status(), Status::Normal);
    assert_eq!(cluster.member(2).own_state(), MemberState::Online);
    assert_eq!(cluster.member(2).members(), &[id(1), id(2)]);
    assert_eq!(cluster.member(1).delivered_seqno(), Seqno(2));
    assert_eq!(cluster.member(2).delivered_seqno(), Seqno(2));
}

#[test]
fn join_for_another_group_is_refused_with_a_reason() {
    let mut cluster = Cluster::formed(1);
    let request = JoinRequest {
        incarnation: Incarnation(1),
        joiner: id(9),
        joiner_incarnation: Incarnation(1),
        group_name: GROUP + 1,
        version: 1,
    };
    let out = cluster.handle(9, 1, Message::JoinRequest(request));
    let refused = JoinRefused {
        incarnation: Incarnation(1),
        reason: JoinRefusal::WrongGroup,
    };
    assert_eq!(
        out,
        vec![Command::Send {
            to: id(9),
            msg: Message::JoinRefused(refused)
        }]
    );
}

#[test]
fn silent_member_is_expelled_after_member_expel_timeout() {
    let mut cluster = Cluster::formed(3);
    cluster.cut.insert(id(3));
    let start = cluster.now;
    let expel = Entry {
        seqno: Seqno(4),
        view: view(1),
        body: EntryBody::Reconfigure {
            members: vec![id(1), id(2)],
            change: ConfigChange::Expel(id(3)),
        },
    };
    loop {
        cluster.advance(Duration::from_millis(50));
        if cluster.member(1).last_seqno() == Seqno(4) {
            break;
        }
        assert!(
            cluster.now.since(start) < Duration::from_secs(6),
            "member 3 was never expelled"
        );
    }
    // Ordered exactly when member 3 had been silent for member_expel_timeout.
    assert_eq!(cluster.now.since(start), Duration::from_secs(5));
    cluster.settle();
    assert_eq!(cluster.member(1).members(), &[id(1), id(2)]);
    assert_eq!(cluster.member(2).members(), &[id(1), id(2)]);
    assert_eq!(cluster.member(2).delivered_seqno(), Seqno(4));
    // The new configuration (two members) commits with both of them.
    let prepare = Prepare {
        incarnation: Incarnation(1),
        view: view(1),
        first_seqno: Seqno(4),
        prev_view: view(1),
        entries: vec![expel],
        commit_seqno: Seqno(3),
    };
    let replayed = cluster.handle(1, 2, Message::Prepare(prepare));
    assert!(
        sends(&replayed).iter().all(|(to, _)| *to == id(1)),
        "a resend is acknowledged to the sequencer only"
    );
}

#[test]
fn voluntary_leave_is_ordered_and_the_leaver_goes_offline() {
    let mut cluster = Cluster::formed(3);
    let now = cluster.now;
    cluster.member(2).leave(now);
    let out: Vec<Command> = cluster.member(2).drain_commands().collect();
    let request = Message::LeaveRequest(crate::gcs::LeaveRequest {
        incarnation: Incarnation(1),
    });
    assert_eq!(
        out,
        vec![Command::Send {
            to: id(1),
            msg: request.clone()
        }]
    );

    // The sequencer orders the removal; the leaver still gets it (it is in the previous
    // configuration) so that it sees its removal committed.
    let leave = Entry {
        seqno: Seqno(4),
        view: view(1),
        body: EntryBody::Reconfigure {
            members: vec![id(1), id(3)],
            change: ConfigChange::Leave(id(2)),
        },
    };
    let prepare = Prepare {
        incarnation: Incarnation(1),
        view: view(1),
        first_seqno: Seqno(4),
        prev_view: view(1),
        entries: vec![leave.clone()],
        commit_seqno: Seqno(3),
    };
    let out = cluster.handle(2, 1, request);
    assert_eq!(
        out,
        vec![
            Command::PersistEntries {
                view: view(1),
                entries: vec![leave]
            },
            Command::Send {
                to: id(3),
                msg: Message::Prepare(prepare.clone())
            },
            Command::Send {
                to: id(2),
                msg: Message::Prepare(prepare)
            },
        ]
    );
    cluster.settle();
    assert_eq!(cluster.member(2).status(), Status::Stopped);
    assert_eq!(cluster.member(2).own_state(), MemberState::Offline);
    assert_eq!(cluster.member(1).members(), &[id(1), id(3)]);
    assert!(cluster.member(2).propose(now, vec![1u8].into()).is_err());
}

#[test]
fn minority_goes_to_error_after_unreachable_majority_timeout() {
    let mut cluster = Cluster::formed(3);
    cluster.member(3).config.unreachable_majority_timeout = Duration::from_secs(3);
    cluster.cut.insert(id(1));
    cluster.cut.insert(id(2));
    let start = cluster.now;
    while cluster.member(3).status() != Status::Stopped {
        cluster.advance(Duration::from_millis(50));
        assert!(
            cluster.now.since(start) < Duration::from_secs(5),
            "member 3 never gave up"
        );
    }
    // Suspicion after 1 s, then 3 s without a majority.
    assert_eq!(cluster.now.since(start), Duration::from_secs(4));
    assert_eq!(cluster.member(3).own_state(), MemberState::Error);
    // It delivered nothing while it was alone.
    assert_eq!(cluster.member(3).delivered_seqno(), Seqno(3));
}

#[test]
fn amnesiac_member_neither_votes_nor_acknowledges_until_caught_up() {
    let mut cluster = Cluster::formed(3);
    let restored = cluster.restored_in_view_1(3, vec![id(1), id(2)]);
    let mut amnesiac_config = config(3);
    amnesiac_config.durable_acks = false;
    cluster.members[2] = Gcs::restart(amnesiac_config, restored, cluster.now);
    let out: Vec<Command> = cluster.member(3).drain_commands().collect();
    assert_eq!(
        out[0],
        Command::PersistMeta(PersistentMeta {
            incarnation: Incarnation(2),
            view: view(1),
            last_normal_view: view(1)
        })
    );

    // The sequencer is gone; member 2 votes, the amnesiac member does not: no view
    // change can form from one vote.
    cluster.cut.insert(id(1));
    for _ in 0..30 {
        cluster.advance(Duration::from_millis(50));
    }
    let vote = Message::StartViewChange(crate::gcs::StartViewChange {
        incarnation: Incarnation(1),
        view: view(2),
        committed: false,
    });
    let out = cluster.handle(2, 3, vote);
    assert!(
        sends(&out)
            .iter()
            .all(|(_, m)| !matches!(m, Message::StartViewChange(_) | Message::DoViewChange(_))),
        "an amnesiac member voted: {out:?}"
    );
    assert_eq!(cluster.member(2).view(), view(1));

    // The sequencer comes back; once the amnesiac member matched its log up to the
    // commit point it saw, it acknowledges again and the group commits new entries.
    cluster.cut.clear();
    let now = cluster.now;
    cluster
        .member(1)
        .propose(now, vec![3u8; 8].into())
        .expect("room");
    cluster.settle();
    for _ in 0..4 {
        cluster.advance(Duration::from_millis(50));
    }
    assert!(!cluster.member(3).amnesiac);
    assert_eq!(
        cluster.member(3).delivered_seqno(),
        cluster.member(1).delivered_seqno()
    );
    assert!(cluster.member(1).delivered_seqno() >= Seqno(4));
}

#[test]
fn a_not_member_notice_of_an_older_view_is_ignored() {
    let mut cluster = Cluster::formed(3);
    // A majority moved member 3 to view 2.
    let committed = Message::StartViewChange(crate::gcs::StartViewChange {
        incarnation: Incarnation(1),
        view: view(2),
        committed: true,
    });
    cluster.handle(2, 3, committed);
    assert_eq!(cluster.member(3).view(), view(2));
    let notice = |view_number| {
        Message::NotMember(crate::gcs::NotMember {
            incarnation: Incarnation(1),
            view: view(view_number),
        })
    };
    // A member still in view 1 is behind: its notice neither stops nor moves member 3.
    let out = cluster.handle(1, 3, notice(1));
    assert_eq!(out, vec![]);
    assert_eq!(cluster.member(3).status(), Status::ViewChange);
    assert_eq!(cluster.member(3).own_state(), MemberState::Online);
    // A notice of its own view makes it ask to join again, still between views.
    let out = cluster.handle(1, 3, notice(2));
    assert!(sends(&out)
        .iter()
        .any(|(_, msg)| matches!(msg, Message::JoinRequest(_))));
    assert_eq!(cluster.member(3).status(), Status::ViewChange);
}

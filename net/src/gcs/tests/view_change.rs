//! A view change after the sequencer crashes: votes, `DoViewChange`, the new sequencer's
//! `ViewStart` entry and `StartView`.

use std::time::Duration;

use super::{id, sends, view, Cluster};
use crate::gcs::view_change::sequencer_of;
use crate::gcs::{
    Command, DoViewChange, Entry, EntryBody, Incarnation, Message, PersistentMeta, Prepare,
    PrepareOk, Seqno, StartViewChange, Status, Time,
};

fn svc(view_number: u64, committed: bool) -> Message {
    Message::StartViewChange(StartViewChange {
        incarnation: Incarnation(1),
        view: view(view_number),
        committed,
    })
}

/// Ids 1, 2 and k, with k chosen so that it is the sequencer of view 2.
fn cluster_where_member_3_is_next() -> Cluster {
    let k = (3..1000)
        .find(|k| sequencer_of(view(2), &[id(1), id(2), id(*k)]) == Some(id(*k)))
        .expect("some id wins view 2");
    Cluster::formed_with(&[1, 2, k])
}

#[test]
#[allow(clippy::too_many_lines)] // One whole view change, message by message.
fn sequencer_crash_leads_to_a_new_view_with_the_next_sequencer() {
    let mut cluster = cluster_where_member_3_is_next();
    let three = cluster.id(3);
    cluster.cut.insert(id(1));
    // Nothing from the sequencer for suspicion_timeout: member 2 votes for view 2.
    cluster.now = Time(cluster.now.0 + 1_000_000);
    let now = cluster.now;
    cluster.member(2).on_timeout(now);
    let out: Vec<Command> = cluster.member(2).drain_commands().collect();
    let votes: Vec<_> = sends(&out)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::StartViewChange(_)))
        .collect();
    assert_eq!(votes, vec![(id(1), svc(2, false)), (three, svc(2, false))]);
    assert!(out.contains(&Command::MemberStateChanged {
        member: id(1),
        state: crate::gcs::MemberState::Unreachable
    }));

    // Member 3 also suspects the sequencer: it adds its vote, has a majority, persists
    // view 2 and announces it. It is the sequencer of view 2, so its DoViewChange goes
    // to itself.
    let out = cluster.handle(2, 3, svc(2, false));
    let meta = |last_normal: u64| {
        Command::PersistMeta(PersistentMeta {
            incarnation: Incarnation(1),
            view: view(2),
            last_normal_view: view(last_normal),
        })
    };
    assert_eq!(
        out,
        vec![
            Command::Send {
                to: id(1),
                msg: svc(2, false)
            },
            Command::Send {
                to: id(2),
                msg: svc(2, false)
            },
            meta(1),
            Command::Send {
                to: id(1),
                msg: svc(2, true)
            },
            Command::Send {
                to: id(2),
                msg: svc(2, true)
            },
        ]
    );

    // Member 2 learns a majority moved: it persists view 2 before answering.
    let dvc = DoViewChange {
        incarnation: Incarnation(1),
        view: view(2),
        last_view: view(1),
        last_seqno: Seqno(3),
        commit_seqno: Seqno(3),
    };
    let out = cluster.handle(3, 2, svc(2, true));
    assert_eq!(
        out,
        vec![
            meta(1),
            Command::Send {
                to: id(1),
                msg: svc(2, true)
            },
            Command::Send {
                to: three,
                msg: svc(2, true)
            },
            Command::Send {
                to: three,
                msg: Message::DoViewChange(dvc)
            },
        ]
    );

    // With DoViewChange from a majority and the best log already its own, member 3
    // takes over: normal status, a ViewStart entry, StartView to everyone.
    let view_start = Entry {
        seqno: Seqno(4),
        view: view(2),
        body: EntryBody::ViewStart,
    };
    let start_view = Prepare {
        incarnation: Incarnation(1),
        view: view(2),
        first_seqno: Seqno(4),
        prev_view: view(1),
        entries: vec![view_start.clone()],
        commit_seqno: Seqno(3),
    };
    let out = cluster.handle(2, 3, Message::DoViewChange(dvc));
    assert_eq!(
        out,
        vec![
            meta(2),
            Command::ViewInstalled {
                view: view(2),
                members: vec![id(1), id(2), three],
                sequencer: three
            },
            Command::PersistEntries {
                view: view(2),
                entries: vec![view_start.clone()]
            },
            Command::Send {
                to: id(1),
                msg: Message::StartView(start_view.clone())
            },
            Command::Send {
                to: id(2),
                msg: Message::StartView(start_view.clone())
            },
        ]
    );

    // Member 2 enters view 2 under the new sequencer, appends the ViewStart entry and
    // acknowledges the prefix it already holds durably in the new view.
    let out = cluster.handle(3, 2, Message::StartView(start_view));
    let ok = Message::PrepareOk(PrepareOk {
        incarnation: Incarnation(1),
        view: view(2),
        seqno: Seqno(3),
    });
    assert_eq!(
        out,
        vec![
            meta(2),
            Command::ViewInstalled {
                view: view(2),
                members: vec![id(1), id(2), three],
                sequencer: three
            },
            Command::PersistEntries {
                view: view(2),
                entries: vec![view_start]
            },
            Command::Send {
                to: id(1),
                msg: ok.clone()
            },
            Command::Send { to: three, msg: ok },
        ]
    );
    cluster.settle();
    assert_eq!(cluster.member(2).commit_seqno(), Seqno(4));
    assert_eq!(cluster.member(2).sequencer(), Some(three));
}

#[test]
fn a_vote_is_ignored_while_the_sequencer_is_heard() {
    let mut cluster = Cluster::formed(3);
    cluster.advance(Duration::from_millis(50));
    // Member 3 alone wants a new view; member 2 heard the sequencer recently.
    let out = cluster.handle(3, 2, svc(2, false));
    assert_eq!(out, vec![]);
    assert_eq!(cluster.member(2).status(), Status::Normal);
    assert_eq!(cluster.member(2).view(), view(1));
}

#[test]
fn new_sequencer_fetches_entries_it_lacks_before_starting_the_view() {
    let mut cluster = cluster_where_member_3_is_next();
    let three = cluster.id(3);
    let now = cluster.now;
    // Member 2 has two entries that member 3 never received; then the sequencer dies.
    cluster.cut.insert(three);
    cluster
        .member(1)
        .propose(now, vec![5u8; 10].into())
        .expect("room");
    cluster
        .member(1)
        .propose(now, vec![6u8; 10].into())
        .expect("room");
    cluster.settle();
    assert_eq!(cluster.member(2).last_seqno(), Seqno(5));
    assert_eq!(cluster.member(3).last_seqno(), Seqno(3));
    cluster.cut.clear();
    cluster.cut.insert(id(1));
    for _ in 0..40 {
        cluster.advance(Duration::from_millis(50));
    }
    // Member 3 is the sequencer of view 2; it fetched 4 and 5 from member 2 before
    // ordering its ViewStart entry at 6, and both delivered everything.
    assert_eq!(cluster.member(3).sequencer(), Some(three));
    assert_eq!(cluster.member(3).last_seqno(), Seqno(6));
    assert_eq!(cluster.member(3).delivered_seqno(), Seqno(6));
    assert_eq!(cluster.member(2).delivered_seqno(), Seqno(6));
}

#[test]
fn sequencer_choice_is_deterministic_and_rotates_with_the_view() {
    let members = [id(1), id(2), id(3)];
    let chosen: Vec<_> = (1..=12)
        .map(|v| sequencer_of(view(v), &members).expect("non-empty"))
        .collect();
    // Every member gets its turn over a few views.
    for member in members {
        assert!(
            chosen.contains(&member),
            "{member} is never chosen: {chosen:?}"
        );
    }
    // Removing a member that does not win a view keeps that view's sequencer.
    let winner = sequencer_of(view(7), &members).expect("non-empty");
    let loser = members
        .iter()
        .copied()
        .find(|m| *m != winner)
        .expect("three members");
    let fewer: Vec<_> = members.iter().copied().filter(|m| *m != loser).collect();
    assert_eq!(sequencer_of(view(7), &fewer), Some(winner));
    assert_eq!(sequencer_of(view(7), &[]), None);
}

#[test]
fn restarted_member_never_leads_the_view_it_restarted_in() {
    let mut cluster = Cluster::formed(3);
    // The sequencer of view 1 crashes and restarts from its durable state: it may have
    // ordered entries in view 1 that its disk lost, so it must not lead view 1 again.
    let restored = cluster.restored_in_view_1(1, vec![id(2), id(3)]);
    cluster.members[0] = crate::gcs::Gcs::restart(super::config(1), restored, cluster.now);
    cluster.member(1).drain_commands().for_each(drop);
    assert_eq!(cluster.member(1).status(), Status::ViewChange);
    let dvc = |from_incarnation: u64| {
        Message::DoViewChange(DoViewChange {
            incarnation: Incarnation(from_incarnation),
            view: view(1),
            last_view: view(1),
            last_seqno: Seqno(3),
            commit_seqno: Seqno(3),
        })
    };
    // DoViewChange for view 1 from both others: a majority, yet nothing happens.
    assert_eq!(cluster.handle(2, 1, dvc(1)), vec![]);
    assert_eq!(cluster.handle(3, 1, dvc(1)), vec![]);
    assert_eq!(cluster.member(1).status(), Status::ViewChange);
    // The others notice the restart (a new incarnation) and move to view 2 without it
    // leading view 1 again; everyone ends up in a newer view with one sequencer.
    for _ in 0..80 {
        cluster.advance(Duration::from_millis(50));
    }
    let sequencers: Vec<_> = (1..=3)
        .filter_map(|n| cluster.member(n).sequencer())
        .collect();
    assert_eq!(sequencers.len(), 3, "all three follow a sequencer");
    assert!(sequencers.iter().all(|s| *s == sequencers[0]));
    assert!(cluster.member(1).view() > view(1));
}

#[test]
fn a_vote_beyond_the_next_view_moves_even_a_working_sequencer() {
    let mut cluster = Cluster::formed(3);
    cluster.advance(Duration::from_millis(50));
    // A vote for the next view does not move the sequencer, which is working...
    let out = cluster.handle(2, 1, svc(2, false));
    assert_eq!(out, vec![]);
    assert_eq!(cluster.member(1).view(), view(1));
    // ...but a vote for view 3 shows that a majority already entered view 2 without it:
    // it votes too, and with member 2 that is a majority.
    let out = cluster.handle(2, 1, svc(3, false));
    assert_eq!(cluster.member(1).status(), Status::ViewChange);
    assert_eq!(cluster.member(1).view(), view(3));
    assert!(sends(&out).contains(&(id(2), svc(3, true))));
}

#[test]
fn a_member_that_sent_do_view_change_to_another_never_leads_that_view() {
    // Member b is the sequencer of view 2 under [1, b, c], member c under [1, c]: the
    // configuration after an uncommitted expel of b that only member 1 holds.
    let (b, c) = (2..100)
        .flat_map(|b| (b + 1..100).map(move |c| (b, c)))
        .find(|(b, c)| {
            sequencer_of(view(2), &[id(1), id(*b), id(*c)]) == Some(id(*b))
                && sequencer_of(view(2), &[id(1), id(*c)]) == Some(id(*c))
        })
        .expect("some ids split view 2");
    let mut cluster = Cluster::formed_with(&[1, b, c]);
    // Member c enters view 2 and sends its DoViewChange to b, which its log names.
    let out = cluster.handle(2, 3, svc(2, true));
    assert!(sends(&out)
        .iter()
        .any(|(to, msg)| *to == id(b) && matches!(msg, Message::DoViewChange(_))));
    // Member 1, whose log ends with the expel of b, names c and sends it its
    // DoViewChange. With its own vote, c would hold a majority of [1, c] after fetching
    // that log, while b holds c's vote and its own, a majority of [1, b, c]: two
    // sequencers of view 2. Having voted for b, c neither fetches nor leads.
    let last = cluster.member(3).last_seqno();
    let commit = cluster.member(1).commit_seqno();
    let dvc = Message::DoViewChange(DoViewChange {
        incarnation: Incarnation(1),
        view: view(2),
        last_view: view(1),
        last_seqno: last.next(),
        commit_seqno: commit,
    });
    let out = cluster.handle(1, 3, dvc);
    assert!(sends(&out)
        .iter()
        .all(|(_, msg)| !matches!(msg, Message::LogRequest(_) | Message::StartView(_))));
    assert_eq!(cluster.member(3).status(), Status::ViewChange);
    // Its retries still go to b only.
    cluster.cut.insert(id(1));
    cluster.now = Time(cluster.now.0 + 60_000);
    let now = cluster.now;
    cluster.member(3).on_timeout(now);
    let out: Vec<Command> = cluster.member(3).drain_commands().collect();
    let dvcs: Vec<_> = sends(&out)
        .into_iter()
        .filter(|(_, msg)| matches!(msg, Message::DoViewChange(_)))
        .map(|(to, _)| to)
        .collect();
    assert!(dvcs.iter().all(|to| *to == id(b)));
}

#[test]
fn the_sequencer_hands_over_to_a_named_member_and_nothing_is_lost() {
    let mut cluster = Cluster::formed(3);
    let now = cluster.now;
    let sequencer = cluster.member(1).sequencer().expect("formed").0;
    let others: Vec<u128> = (1..=3).filter(|n| *n != sequencer).collect();
    let (target, third) = (others[0], others[1]);
    // Only the sequencer hands over, and only to another member of the configuration.
    assert!(!cluster.member(third).hand_over(now, id(target)));
    assert!(!cluster.member(sequencer).hand_over(now, id(sequencer)));
    assert!(!cluster.member(sequencer).hand_over(now, id(77)));
    // A proposal still in flight when the sequencer hands over.
    cluster
        .member(third)
        .propose(now, vec![7u8].into())
        .expect("room");
    let before = cluster.member(1).view();
    assert!(cluster.member(sequencer).hand_over(now, id(target)));
    cluster.settle();
    for n in 1..=3 {
        let member = cluster.member(n);
        assert_eq!(member.status(), Status::Normal, "member {n}");
        assert_eq!(member.sequencer(), Some(id(target)), "member {n}");
        assert!(member.view() > before);
    }
    cluster
        .member(sequencer)
        .propose(now, vec![8u8].into())
        .expect("room");
    cluster.settle();
    // The proposal the old sequencer dropped is proposed again on the origin's next tick.
    for _ in 0..5 {
        cluster.advance(Duration::from_millis(100));
    }
    let last = cluster.member(target).last_seqno();
    for n in 1..=3 {
        assert_eq!(cluster.member(n).delivered_seqno(), last, "member {n}");
        let payloads: Vec<Vec<u8>> = cluster
            .member(n)
            .log
            .slice(Seqno(1), usize::MAX, usize::MAX)
            .into_iter()
            .filter_map(|entry| match entry.body {
                EntryBody::Proposal(proposal) => Some(proposal.payload.to_vec()),
                _ => None,
            })
            .collect();
        assert_eq!(payloads.len(), 2, "member {n}: {payloads:?}");
        assert!(
            payloads.contains(&vec![7]) && payloads.contains(&vec![8]),
            "member {n}"
        );
    }
}

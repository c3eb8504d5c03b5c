//! The normal case: propose at a follower, order at the sequencer, persist, acknowledge,
//! commit, deliver.

use super::{id, sends, view, Cluster};
use crate::gcs::{
    Command, Commit, Entry, EntryBody, Incarnation, Message, Payload, Prepare, PrepareOk, Proposal,
    ProposalId, Propose, Seqno,
};

fn proposal(origin: u128, counter: u64, byte: u8) -> Proposal {
    let payload: Payload = vec![byte; 100].into();
    Proposal {
        id: ProposalId {
            origin: id(origin),
            incarnation: Incarnation(1),
            counter,
        },
        payload,
    }
}

fn propose_message(proposals: Vec<Proposal>) -> Message {
    Message::Propose(Propose {
        incarnation: Incarnation(1),
        proposals,
    })
}

#[test]
#[allow(clippy::too_many_lines)] // One whole round of the normal case, step by step.
fn propose_order_persist_acknowledge_commit_deliver() {
    let mut cluster = Cluster::formed(3);
    let now = cluster.now;
    // The group formed with three configuration entries, all delivered.
    assert_eq!(cluster.member(1).commit_seqno(), Seqno(3));

    // A follower hands its proposal to the sequencer.
    let sent = proposal(2, 1, 7);
    let proposal_id = cluster
        .member(2)
        .propose(now, sent.payload.clone())
        .expect("room for a proposal");
    assert_eq!(proposal_id, sent.id);
    let out: Vec<Command> = cluster.member(2).drain_commands().collect();
    assert_eq!(
        out,
        vec![Command::Send {
            to: id(1),
            msg: propose_message(vec![sent.clone()])
        }]
    );

    // The sequencer orders it, persists it and sends one Prepare to each member.
    let entry = Entry {
        seqno: Seqno(4),
        view: view(1),
        body: EntryBody::Proposal(sent.clone()),
    };
    let prepare = Prepare {
        incarnation: Incarnation(1),
        view: view(1),
        first_seqno: Seqno(4),
        prev_view: view(1),
        entries: vec![entry.clone()],
        commit_seqno: Seqno(3),
    };
    let out = cluster.handle(2, 1, propose_message(vec![sent]));
    assert_eq!(
        out,
        vec![
            Command::PersistEntries {
                view: view(1),
                entries: vec![entry.clone()]
            },
            Command::Send {
                to: id(2),
                msg: Message::Prepare(prepare.clone())
            },
            Command::Send {
                to: id(3),
                msg: Message::Prepare(prepare.clone())
            },
        ]
    );

    // A follower appends and persists; it acknowledges only once the write is durable.
    let out = cluster.handle(1, 2, Message::Prepare(prepare));
    assert_eq!(
        out,
        vec![Command::PersistEntries {
            view: view(1),
            entries: vec![entry.clone()]
        }]
    );
    cluster.member(2).on_persisted(now, view(1), Seqno(4));
    let ok = |from_seqno: u64| PrepareOk {
        incarnation: Incarnation(1),
        view: view(1),
        seqno: Seqno(from_seqno),
    };
    let out: Vec<Command> = cluster.member(2).drain_commands().collect();
    assert_eq!(
        out,
        vec![
            Command::Send {
                to: id(1),
                msg: Message::PrepareOk(ok(4))
            },
            Command::Send {
                to: id(3),
                msg: Message::PrepareOk(ok(4))
            },
        ]
    );

    // The sequencer's own persistence alone is not a majority.
    cluster.member(1).on_persisted(now, view(1), Seqno(4));
    let out: Vec<Command> = cluster.member(1).drain_commands().collect();
    assert_eq!(
        out,
        vec![
            Command::Send {
                to: id(2),
                msg: Message::PrepareOk(ok(4))
            },
            Command::Send {
                to: id(3),
                msg: Message::PrepareOk(ok(4))
            },
        ]
    );

    // With the follower's acknowledgement it commits, delivers, and, having nothing else
    // to send, tells everyone the commit point at once.
    let out = cluster.handle(2, 1, Message::PrepareOk(ok(4)));
    let commit = Commit {
        incarnation: Incarnation(1),
        view: view(1),
        commit_seqno: Seqno(4),
    };
    assert_eq!(
        out,
        vec![
            Command::Deliver {
                seqno: Seqno(4),
                entry: entry.clone()
            },
            Command::Send {
                to: id(2),
                msg: Message::Commit(commit)
            },
            Command::Send {
                to: id(3),
                msg: Message::Commit(commit)
            },
        ]
    );

    // The follower computes the commit point itself from the acknowledgements it sees.
    let out = cluster.handle(1, 2, Message::PrepareOk(ok(4)));
    assert_eq!(
        out,
        vec![Command::Deliver {
            seqno: Seqno(4),
            entry
        }]
    );
}

#[test]
fn sequencer_orders_each_origin_in_counter_order_and_drops_duplicates() {
    let mut cluster = Cluster::formed(3);
    let (first, second) = (proposal(3, 1, 1), proposal(3, 2, 2));
    // The later proposal arrives first: it is held, nothing is ordered.
    let out = cluster.handle(3, 1, propose_message(vec![second.clone()]));
    assert_eq!(out, vec![]);
    // The earlier one fills the gap: both are ordered, in counter order, in one batch.
    let out = cluster.handle(3, 1, propose_message(vec![first.clone()]));
    let entries = vec![
        Entry {
            seqno: Seqno(4),
            view: view(1),
            body: EntryBody::Proposal(first.clone()),
        },
        Entry {
            seqno: Seqno(5),
            view: view(1),
            body: EntryBody::Proposal(second.clone()),
        },
    ];
    assert_eq!(
        out[0],
        Command::PersistEntries {
            view: view(1),
            entries
        }
    );
    assert_eq!(sends(&out).len(), 2);
    // Resent duplicates are dropped.
    let out = cluster.handle(3, 1, propose_message(vec![first, second]));
    assert_eq!(out, vec![]);
    // A proposal of an older incarnation of the origin is dropped too.
    let mut stale = proposal(3, 3, 3);
    stale.id.incarnation = Incarnation(0);
    let out = cluster.handle(3, 1, propose_message(vec![stale]));
    assert_eq!(out, vec![]);
}

#[test]
fn persistence_completion_from_an_older_view_is_ignored() {
    let mut cluster = Cluster::formed(3);
    let now = cluster.now;
    let out = cluster.handle(2, 1, propose_message(vec![proposal(2, 1, 9)]));
    let Some(Message::Prepare(prepare)) = sends(&out).first().map(|(_, msg)| msg.clone()) else {
        panic!("the sequencer sent no Prepare: {out:?}");
    };
    let out = cluster.handle(1, 3, Message::Prepare(prepare));
    assert_eq!(out.len(), 1, "member 3 persists the entry: {out:?}");
    // A completion tagged with view 0 (older than view 1) acknowledges nothing.
    cluster.member(3).on_persisted(now, view(0), Seqno(4));
    assert_eq!(cluster.member(3).drain_commands().count(), 0);
    cluster.member(3).on_persisted(now, view(1), Seqno(4));
    assert_eq!(
        sends(&cluster.member(3).drain_commands().collect::<Vec<_>>()).len(),
        2
    );
}

#[test]
fn propose_is_bounded() {
    let mut cluster = Cluster::formed(3);
    let now = cluster.now;
    let limit = cluster.member(2).config.proposals_pending_max;
    cluster.member(2).config.proposals_pending_max = 2;
    for _ in 0..2 {
        cluster
            .member(2)
            .propose(now, vec![1u8].into())
            .expect("room");
    }
    assert_eq!(
        cluster.member(2).propose(now, vec![1u8].into()),
        Err(crate::gcs::ProposeError::QueueFull {
            pending: 2,
            limit: 2
        })
    );
    cluster.member(2).config.proposals_pending_max = limit;
    let big: Payload = vec![0u8; cluster.member(2).config.payload_bytes_max + 1].into();
    assert!(matches!(
        cluster.member(2).propose(now, big),
        Err(crate::gcs::ProposeError::PayloadTooLarge { .. })
    ));
}

//! Property tests of the gcs message codec: every message round-trips through a frame,
//! every entry body round-trips as a log payload, and arbitrary bodies under any kind
//! number never make the decoder panic.

use std::sync::Arc;

use proptest::prelude::*;
use tutti_net::gcs::{
    Commit, ConfigChange, DoViewChange, Entry, EntryBody, Heartbeat, Incarnation, JoinRefusal,
    JoinRefused, JoinRequest, LeaveRequest, LogChunk, LogRequest, MemberId, Message, NotMember,
    Prepare, PrepareNack, PrepareOk, Proposal, ProposalId, Propose, Seqno, StartViewChange, ViewId,
};
use tutti_net::wire::{
    decode_entry_body, decode_frame, decode_message, encode_entry, encode_frame, encode_message,
    FrameOrigin,
};

fn proposal() -> impl Strategy<Value = Proposal> {
    (
        any::<u128>(),
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(origin, incarnation, counter, payload)| Proposal {
            id: ProposalId {
                origin: MemberId(origin),
                incarnation: Incarnation(incarnation),
                counter,
            },
            payload: Arc::from(payload),
        })
}

fn entry_body() -> impl Strategy<Value = EntryBody> {
    let member = any::<u128>().prop_map(MemberId);
    let change = (0u8..4, member.clone()).prop_map(|(tag, m)| match tag {
        0 => ConfigChange::Bootstrap(m),
        1 => ConfigChange::Join(m),
        2 => ConfigChange::Leave(m),
        _ => ConfigChange::Expel(m),
    });
    prop_oneof![
        proposal().prop_map(EntryBody::Proposal),
        Just(EntryBody::ViewStart),
        (proptest::collection::vec(member, 0..9), change)
            .prop_map(|(members, change)| EntryBody::Reconfigure { members, change }),
    ]
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    proptest::collection::vec(
        (any::<u64>(), any::<u64>(), entry_body()).prop_map(|(seqno, view, body)| Entry {
            seqno: Seqno(seqno),
            view: ViewId(view),
            body,
        }),
        0..6,
    )
}

fn prepare(incarnation: Incarnation) -> impl Strategy<Value = Prepare> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        entries(),
        any::<u64>(),
    )
        .prop_map(move |(view, first, prev_view, entries, commit)| Prepare {
            incarnation,
            view: ViewId(view),
            first_seqno: Seqno(first),
            prev_view: ViewId(prev_view),
            entries,
            commit_seqno: Seqno(commit),
        })
}

/// Normal-case messages: proposals, prepares, acknowledgements, commits, heartbeats.
fn normal_case_message() -> impl Strategy<Value = Message> {
    any::<u64>().prop_flat_map(|inc| {
        let i = Incarnation(inc);
        let v = any::<u64>().prop_map(ViewId);
        let s = any::<u64>().prop_map(Seqno);
        prop_oneof![
            proptest::collection::vec(proposal(), 0..5).prop_map(
                move |proposals| Message::Propose(Propose {
                    incarnation: i,
                    proposals
                })
            ),
            prepare(i).prop_map(Message::Prepare),
            prepare(i).prop_map(Message::StartView),
            (v.clone(), s.clone()).prop_map(move |(view, seqno)| Message::PrepareOk(PrepareOk {
                incarnation: i,
                view,
                seqno
            })),
            (v.clone(), s.clone()).prop_map(move |(view, match_seqno)| Message::PrepareNack(
                PrepareNack {
                    incarnation: i,
                    view,
                    match_seqno
                }
            )),
            (v.clone(), s.clone()).prop_map(move |(view, commit_seqno)| Message::Commit(Commit {
                incarnation: i,
                view,
                commit_seqno
            })),
            (v.clone(), any::<bool>(), s.clone()).prop_map(move |(view, normal, commit_seqno)| {
                Message::Heartbeat(Heartbeat {
                    incarnation: i,
                    view,
                    normal,
                    commit_seqno,
                })
            }),
        ]
    })
}

/// View-change, catch-up and membership messages.
fn view_and_membership_message() -> impl Strategy<Value = Message> {
    any::<u64>().prop_flat_map(|inc| {
        let i = Incarnation(inc);
        let v = any::<u64>().prop_map(ViewId);
        let s = any::<u64>().prop_map(Seqno);
        prop_oneof![
            (v.clone(), any::<bool>()).prop_map(move |(view, committed)| {
                Message::StartViewChange(StartViewChange {
                    incarnation: i,
                    view,
                    committed,
                })
            }),
            (v.clone(), v.clone(), s.clone(), s.clone()).prop_map(
                move |(view, last_view, last_seqno, commit_seqno)| {
                    Message::DoViewChange(DoViewChange {
                        incarnation: i,
                        view,
                        last_view,
                        last_seqno,
                        commit_seqno,
                    })
                }
            ),
            (v.clone(), s.clone()).prop_map(move |(view, from)| Message::LogRequest(LogRequest {
                incarnation: i,
                view,
                from
            })),
            (
                v.clone(),
                s.clone(),
                v.clone(),
                entries(),
                v.clone(),
                s.clone()
            )
                .prop_map(
                    move |(view, first_seqno, prev_view, entries, last_view, last_seqno)| {
                        Message::LogChunk(LogChunk {
                            incarnation: i,
                            view,
                            first_seqno,
                            prev_view,
                            entries,
                            last_view,
                            last_seqno,
                        })
                    }
                ),
            (any::<u128>(), any::<u64>(), any::<u128>(), any::<u32>()).prop_map(
                move |(joiner, joiner_incarnation, group_name, version)| {
                    Message::JoinRequest(JoinRequest {
                        incarnation: i,
                        joiner: MemberId(joiner),
                        joiner_incarnation: Incarnation(joiner_incarnation),
                        group_name,
                        version,
                    })
                }
            ),
            prop_oneof![
                Just(JoinRefusal::WrongGroup),
                Just(JoinRefusal::IncompatibleVersion),
                Just(JoinRefusal::GroupFull)
            ]
            .prop_map(move |reason| Message::JoinRefused(JoinRefused {
                incarnation: i,
                reason
            })),
            Just(Message::LeaveRequest(LeaveRequest { incarnation: i })),
            v.prop_map(move |view| Message::NotMember(NotMember {
                incarnation: i,
                view
            })),
        ]
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![normal_case_message(), view_and_membership_message()]
}

fn origin_for(message: &Message) -> FrameOrigin {
    FrameOrigin {
        group_name: 0x5eed,
        sender: 42,
        incarnation: message.incarnation().0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn every_message_round_trips(message in message()) {
        let mut out = Vec::new();
        let written = encode_message(&mut out, origin_for(&message), &message).unwrap();
        prop_assert_eq!(written, out.len());
        let (frame, used) = decode_frame(&out).unwrap().unwrap();
        prop_assert_eq!(used, out.len());
        prop_assert_eq!(frame.header.kind, message.kind() as u16);
        prop_assert_eq!(decode_message(&frame).unwrap(), message);
    }

    #[test]
    fn every_entry_body_round_trips(body in entry_body()) {
        let mut out = Vec::new();
        encode_entry(&mut out, &body);
        prop_assert_eq!(decode_entry_body(&out).unwrap(), body);
        // One byte more or one byte less is never the same entry.
        let mut longer = out.clone();
        longer.push(0);
        prop_assert!(decode_entry_body(&longer).is_err());
        prop_assert!(decode_entry_body(&out[..out.len() - 1]).is_err());
    }

    #[test]
    fn arbitrary_bodies_never_panic(
        kind in 0u16..20,
        incarnation in any::<u64>(),
        tail in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let origin = FrameOrigin { group_name: 1, sender: 2, incarnation };
        let mut out = Vec::new();
        encode_frame(&mut out, kind, origin, |b| {
            b.extend_from_slice(&incarnation.to_le_bytes());
            b.extend_from_slice(&tail);
        }).unwrap();
        let (frame, _) = decode_frame(&out).unwrap().unwrap();
        if let Ok(message) = decode_message(&frame) {
            // Whatever decodes re-encodes to the very same frame.
            let mut again = Vec::new();
            encode_message(&mut again, origin, &message).unwrap();
            prop_assert_eq!(again, out);
        }
        let _ = decode_entry_body(&tail);
    }
}

#[test]
fn a_message_whose_incarnation_differs_from_its_frame_is_refused() {
    let message = Message::LeaveRequest(LeaveRequest {
        incarnation: Incarnation(3),
    });
    let mut out = Vec::new();
    let origin = FrameOrigin {
        group_name: 1,
        sender: 2,
        incarnation: 4,
    };
    encode_frame(&mut out, message.kind() as u16, origin, |b| {
        b.extend_from_slice(&3u64.to_le_bytes());
    })
    .unwrap();
    let (frame, _) = decode_frame(&out).unwrap().unwrap();
    assert!(decode_message(&frame).is_err());
}

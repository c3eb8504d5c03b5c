//! The gcs core alone, in memory, no IO: ordered messages per second through a
//! 3-member group driven in one thread. Commands are handed between the three cores
//! directly and every log write completes at once, so this measures only the protocol
//! logic (ordering, batching, acknowledgements, commit, delivery).

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tutti_net::gcs::{Command, Gcs, GcsConfig, MemberId, Message, Payload, Seqno, Time};

/// Messages ordered per measured iteration.
const MESSAGES: u64 = 20_000;
/// Bytes per message.
const PAYLOAD_BYTES: usize = 100;
const GROUP: u128 = 0xbe;

struct Group {
    members: Vec<Gcs>,
    network: VecDeque<(MemberId, MemberId, Message)>,
    scratch: Vec<Command>,
    delivered: u64,
}

impl Group {
    fn formed() -> Group {
        let config = |n: u128| {
            let mut config = GcsConfig::new(MemberId(n), GROUP);
            config.proposals_pending_max = 1 << 20;
            config
        };
        let mut group = Group {
            members: vec![Gcs::bootstrap(config(1), Time(0))],
            network: VecDeque::new(),
            scratch: Vec::new(),
            delivered: 0,
        };
        group.pump();
        for n in 2..=3 {
            group
                .members
                .push(Gcs::join(config(n), vec![MemberId(1)], Time(0)));
            group.pump();
        }
        group.delivered = 0;
        group
    }

    fn run_commands(&mut self, index: usize) {
        let me = self.members[index].member();
        self.scratch.extend(self.members[index].drain_commands());
        let mut commands = std::mem::take(&mut self.scratch);
        for command in commands.drain(..) {
            match command {
                Command::Send { to, msg } => self.network.push_back((me, to, msg)),
                Command::PersistEntries { view, entries } => {
                    let last = entries.last().map_or(Seqno::ZERO, |entry| entry.seqno);
                    self.members[index].on_persisted(Time(0), view, last);
                }
                Command::Deliver { entry, .. } => {
                    self.delivered += 1;
                    black_box(entry);
                }
                _ => {}
            }
        }
        self.scratch = commands;
    }

    /// Runs commands and delivers messages until nothing is left.
    fn pump(&mut self) {
        loop {
            for index in 0..self.members.len() {
                self.run_commands(index);
            }
            let Some((from, to, msg)) = self.network.pop_front() else {
                return;
            };
            let index = usize::try_from(to.0 - 1).expect("ids are 1..=3");
            self.members[index].on_message(Time(0), from, msg);
        }
    }
}

fn propose_and_deliver(mut group: Group, origins: &[usize]) -> u64 {
    let payload: Payload = vec![7u8; PAYLOAD_BYTES].into();
    for n in 0..MESSAGES {
        let origin = origins[(n as usize) % origins.len()];
        group.members[origin]
            .propose(Time(0), payload.clone())
            .expect("room for every proposal");
        // Let the cores work between proposals now and then, as a shell would between
        // socket reads, so batches form from whatever is pending.
        if n % 64 == 63 {
            group.pump();
        }
    }
    group.pump();
    // Every member delivers every message (plus nothing else: the group formed before).
    assert_eq!(group.delivered, 3 * MESSAGES);
    group.delivered
}

fn bench(c: &mut Criterion) {
    let mut benches = c.benchmark_group("gcs_3_members_100_byte_messages");
    benches.throughput(Throughput::Elements(MESSAGES));
    benches.sample_size(20);
    benches.bench_function("propose_at_sequencer", |b| {
        b.iter_batched(
            Group::formed,
            |group| propose_and_deliver(group, &[0]),
            BatchSize::LargeInput,
        );
    });
    benches.bench_function("propose_at_every_member", |b| {
        b.iter_batched(
            Group::formed,
            |group| propose_and_deliver(group, &[0, 1, 2]),
            BatchSize::LargeInput,
        );
    });
    benches.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

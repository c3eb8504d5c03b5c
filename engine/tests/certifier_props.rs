//! Property tests of certification determinism: random streams of requests, low
//! watermarks and ONLINE-set changes, fed to certifiers that reclaim physically at
//! different moments (and use different index capacities when none can fill), must give
//! the same verdicts as each other and as a reference model (a plain `HashMap` with the
//! rules of `engine::certifier`'s module doc).

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use tutti_engine::certifier::constants::{
    LIVE_LOAD_DENOMINATOR, LIVE_LOAD_NUMERATOR, VERDICT_WINDOW_SEQNOS,
};
use tutti_engine::certifier::{
    AbortReason, CertificationRequest, Certifier, CheckedKey, IndexConfig, KeyHash, Verdict,
};
use tutti_net::gcs::MemberId;
use tutti_storage::Seqno;

const MEMBERS: [MemberId; 3] = [MemberId(1), MemberId(2), MemberId(3)];

/// One step of a stream, in the order the total order would deliver it.
#[derive(Clone, Debug)]
enum Op {
    /// A transaction, `gap` seqnos after the previous entry (skipped seqnos carried
    /// entries the certifier does not see).
    Txn {
        gap: u64,
        snapshot_lag: u64,
        style: u8,
        written: Vec<u8>,
        read: Vec<u8>,
        watch_lag: u64,
        deps: Vec<u8>,
    },
    /// A member's low watermark, `lag` seqnos behind the current position.
    LowWatermark { member: usize, lag: u64 },
    /// The ONLINE set changes to the members whose bit is set.
    SetMembers { mask: u8 },
    /// Only the second certifier reclaims, examining this many slots.
    Reclaim { slots: usize },
}

fn op(key_pool: u8) -> impl Strategy<Value = Op> {
    let keys = move || prop::collection::vec(0..key_pool, 0..4);
    prop_oneof![
        6 => (0..3u64, 0..8u64, 0..3u8, keys(), keys(), 0..3u64, prop::collection::vec(0..6u8, 0..3))
            .prop_map(|(gap, snapshot_lag, style, written, read, watch_lag, deps)| Op::Txn {
                gap, snapshot_lag, style, written, read, watch_lag, deps,
            }),
        2 => (0..3usize, 0..10u64).prop_map(|(member, lag)| Op::LowWatermark { member, lag }),
        1 => (1..8u8).prop_map(|mask| Op::SetMembers { mask }),
        2 => (1..40usize).prop_map(|slots| Op::Reclaim { slots }),
    ]
}

fn key(index: u8) -> KeyHash {
    KeyHash::of(&[b'k', index])
}

/// Turns ops into concrete calls; tracks seqnos so every consumer sees the same calls.
struct Stream {
    last: u64,
    recent_txns: Vec<u64>,
}

enum Call {
    Certify(CertificationRequest),
    LowWatermark(MemberId, Seqno),
    SetMembers(Vec<MemberId>),
    Reclaim(usize),
}

impl Stream {
    fn call(&mut self, op: &Op) -> Call {
        match op {
            Op::Txn {
                gap,
                snapshot_lag,
                style,
                written,
                read,
                watch_lag,
                deps,
            } => {
                let snapshot = Seqno(self.last.saturating_sub(*snapshot_lag));
                self.last += 1 + gap;
                let seqno = Seqno(self.last);
                let written: Vec<KeyHash> = written.iter().map(|&k| key(k)).collect();
                let read: Vec<KeyHash> = read.iter().map(|&k| key(k)).collect();
                // Offsets 0..4 pick recent transactions; 4 and 5 pick seqnos that never
                // carried one, or carry this one.
                let local_deps = deps
                    .iter()
                    .map(
                        |&d| match self.recent_txns.iter().rev().nth(usize::from(d)) {
                            Some(&s) if d < 4 => Seqno(s),
                            _ if d == 5 => seqno,
                            _ => Seqno(self.last.saturating_sub(1 + u64::from(d))),
                        },
                    )
                    .collect();
                self.recent_txns.push(self.last);
                let origin = MEMBERS[(self.last % 3) as usize];
                Call::Certify(match style {
                    0 => {
                        CertificationRequest::snapshot(seqno, snapshot, written, local_deps, origin)
                    }
                    1 => CertificationRequest::serializable(
                        seqno, snapshot, &read, written, local_deps, origin,
                    ),
                    _ => {
                        let observed_at = Seqno(snapshot.0.saturating_sub(*watch_lag));
                        let checked = read
                            .iter()
                            .map(|&key| CheckedKey { key, observed_at })
                            .collect();
                        CertificationRequest::command(
                            seqno, snapshot, checked, written, local_deps, origin,
                        )
                    }
                })
            }
            Op::LowWatermark { member, lag } => {
                self.last += 1;
                Call::LowWatermark(MEMBERS[*member], Seqno(self.last.saturating_sub(*lag)))
            }
            Op::SetMembers { mask } => {
                self.last += 1;
                let online = (0..3)
                    .filter(|b| mask & (1 << b) != 0)
                    .map(|b| MEMBERS[b])
                    .collect();
                Call::SetMembers(online)
            }
            Op::Reclaim { slots } => Call::Reclaim(*slots),
        }
    }
}

/// The reference model: the rules, with a `HashMap` and no physical state at all.
struct Model {
    shard_bits: u32,
    shard_live_max: usize,
    index: HashMap<u64, u64>,
    verdicts: HashMap<u64, bool>,
    online: BTreeMap<MemberId, u64>,
    gc: u64,
}

impl Model {
    fn new(config: IndexConfig) -> Model {
        Model {
            shard_bits: config.shard_bits,
            shard_live_max: (1 << config.shard_slot_bits) * LIVE_LOAD_NUMERATOR
                / LIVE_LOAD_DENOMINATOR,
            index: HashMap::new(),
            verdicts: HashMap::new(),
            online: BTreeMap::new(),
            gc: 0,
        }
    }

    fn shard(&self, key: u64) -> u64 {
        if self.shard_bits == 0 {
            0
        } else {
            key >> (64 - self.shard_bits)
        }
    }

    fn live(&self, key: KeyHash) -> Option<u64> {
        self.index.get(&key.0).copied().filter(|&s| s > self.gc)
    }

    fn certify(&mut self, r: &CertificationRequest) -> Verdict {
        let verdict = self.decide(r);
        if let Verdict::Commit { .. } = verdict {
            for k in &r.written {
                self.index.insert(k.0, r.seqno.0);
            }
        }
        self.verdicts.insert(r.seqno.0, verdict.is_commit());
        verdict
    }

    fn decide(&self, r: &CertificationRequest) -> Verdict {
        let n = r.seqno.0;
        let oldest = r
            .checked
            .iter()
            .map(|c| c.observed_at)
            .fold(r.snapshot, Seqno::min);
        if oldest.0 < self.gc {
            return Verdict::Abort(AbortReason::SnapshotTooOld {
                observed_at: oldest,
                gc_seqno: Seqno(self.gc),
            });
        }
        for &d in &r.local_deps {
            let reason = if d.0 == 0 || d.0 >= n {
                Some(AbortReason::DependencyNotCertified { dependency: d })
            } else if d.0 + VERDICT_WINDOW_SEQNOS <= n {
                Some(AbortReason::DependencyForgotten { dependency: d })
            } else {
                match self.verdicts.get(&d.0) {
                    Some(true) => None,
                    Some(false) => Some(AbortReason::DependencyAborted { dependency: d }),
                    None => Some(AbortReason::DependencyNotCertified { dependency: d }),
                }
            };
            if let Some(reason) = reason {
                return Verdict::Abort(reason);
            }
        }
        let mut depends_on = self.gc;
        for c in &r.checked {
            if let Some(w) = self.live(c.key) {
                depends_on = depends_on.max(w);
                if w > c.observed_at.0 && !r.local_deps.contains(&Seqno(w)) {
                    return Verdict::Abort(AbortReason::Conflict {
                        key: c.key,
                        winner_seqno: Seqno(w),
                    });
                }
            }
        }
        let mut new_per_shard: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for k in &r.written {
            if let Some(w) = self.live(*k) {
                depends_on = depends_on.max(w);
            } else {
                let keys = new_per_shard.entry(self.shard(k.0)).or_default();
                if !keys.contains(&k.0) {
                    keys.push(k.0);
                }
            }
        }
        for (&shard, keys) in &new_per_shard {
            let live = self
                .index
                .iter()
                .filter(|&(&k, &s)| self.shard(k) == shard && s > self.gc)
                .count();
            if live + keys.len() > self.shard_live_max {
                return Verdict::Abort(AbortReason::IndexFull {
                    shard: shard as u32,
                });
            }
        }
        Verdict::Commit {
            depends_on: Seqno(depends_on),
        }
    }

    fn on_low_watermark(&mut self, member: MemberId, seqno: Seqno) {
        if let Some(low) = self.online.get_mut(&member) {
            *low = (*low).max(seqno.0);
        }
        self.recompute();
    }

    fn set_members(&mut self, online: &[MemberId]) {
        self.online = online
            .iter()
            .map(|m| (*m, self.online.get(m).copied().unwrap_or(0)))
            .collect();
        self.recompute();
    }

    fn recompute(&mut self) {
        if let Some(&min) = self.online.values().min() {
            self.gc = self.gc.max(min);
        }
    }
}

/// Feeds `ops` to the model and to each certifier; certifier 0 never reclaims on its own
/// (only the forced sweeps of a nearly full shard), the others do at every `Reclaim`.
/// Returns the verdicts, checking on the way that all agree.
fn run(
    ops: &[Op],
    model_config: IndexConfig,
    configs: &[IndexConfig],
) -> Result<Vec<Certifier>, TestCaseError> {
    let mut model = Model::new(model_config);
    let mut certifiers: Vec<Certifier> = configs
        .iter()
        .map(|&c| Certifier::new(c).expect("valid geometry"))
        .collect();
    let mut stream = Stream {
        last: 0,
        recent_txns: Vec::new(),
    };
    for (step, op) in ops.iter().enumerate() {
        match stream.call(op) {
            Call::Certify(request) => {
                let expected = model.certify(&request);
                for (which, certifier) in certifiers.iter_mut().enumerate() {
                    let verdict = certifier.certify(&request);
                    prop_assert_eq!(
                        verdict,
                        expected,
                        "step {} certifier {} request {:?}",
                        step,
                        which,
                        request
                    );
                }
            }
            Call::LowWatermark(member, seqno) => {
                model.on_low_watermark(member, seqno);
                for c in &mut certifiers {
                    c.on_low_watermark(member, seqno);
                }
            }
            Call::SetMembers(online) => {
                model.set_members(&online);
                for c in &mut certifiers {
                    c.set_members(&online).expect("three members");
                }
            }
            Call::Reclaim(slots) => {
                for (which, c) in certifiers.iter_mut().enumerate().skip(1) {
                    c.reclaim_step(slots * which);
                }
            }
        }
        for c in &certifiers {
            prop_assert_eq!(c.gc_seqno(), Seqno(model.gc));
        }
    }
    Ok(certifiers)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Capacities above the live need: 24 keys never fill any of these shards.
    #[test]
    fn certifiers_with_different_reclaim_and_capacity_agree_with_the_model(
        ops in prop::collection::vec(op(24), 1..200),
    ) {
        let small = IndexConfig { shard_bits: 2, shard_slot_bits: 5 };
        let large = IndexConfig { shard_bits: 1, shard_slot_bits: 6 };
        run(&ops, small, &[small, small, large])?;
    }

    /// Tight capacity: full shards happen, and the decision must not depend on when
    /// each certifier reclaimed. The states they encode must be equal byte for byte, and
    /// a certifier decoded from one of them must go on deciding the same.
    #[test]
    fn full_decisions_and_encoded_state_do_not_depend_on_reclamation(
        ops in prop::collection::vec(op(20), 1..200),
        split in 0usize..200,
    ) {
        let tight = IndexConfig { shard_bits: 1, shard_slot_bits: 3 };
        let split = split.min(ops.len());
        let certifiers = run(&ops[..split], tight, &[tight, tight, tight])?;
        let encoded: Vec<Vec<u8>> = certifiers.iter().map(|c| {
            let mut out = Vec::new();
            c.encode_state(&mut out);
            out
        }).collect();
        prop_assert_eq!(&encoded[0], &encoded[1]);
        prop_assert_eq!(&encoded[0], &encoded[2]);
        let decoded = Certifier::decode_state(&encoded[1]).expect("valid state");
        let mut again = Vec::new();
        decoded.encode_state(&mut again);
        prop_assert_eq!(&again, &encoded[0]);
        // Replaying the whole stream through a fresh trio still agrees; the decoded one
        // is checked against the live one on the rest of the stream.
        run(&ops, tight, &[tight, tight, tight])?;
        let mut live = certifiers.into_iter().next().expect("three");
        let mut decoded = decoded;
        let mut stream = Stream { last: 0, recent_txns: Vec::new() };
        for op in &ops[..split] {
            stream.call(op);
        }
        for op in &ops[split..] {
            match stream.call(op) {
                Call::Certify(r) => prop_assert_eq!(live.certify(&r), decoded.certify(&r)),
                Call::LowWatermark(m, s) => {
                    live.on_low_watermark(m, s);
                    decoded.on_low_watermark(m, s);
                }
                Call::SetMembers(online) => {
                    live.set_members(&online).expect("members");
                    decoded.set_members(&online).expect("members");
                }
                Call::Reclaim(slots) => {
                    decoded.reclaim_step(slots);
                }
            }
        }
    }
}

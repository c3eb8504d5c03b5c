//! Handler tests: exact verdicts for hand-built request sequences, one rule of the module
//! doc at a time.

use super::*;

const ORIGIN_A: MemberId = MemberId(0xa);
const ORIGIN_B: MemberId = MemberId(0xb);

fn k(name: &str) -> KeyHash {
    KeyHash::of(name.as_bytes())
}

fn certifier() -> Certifier {
    Certifier::new(IndexConfig::for_live_entries(1_000)).expect("valid geometry")
}

fn snapshot_txn(seqno: u64, snapshot: u64, written: &[&str]) -> CertificationRequest {
    CertificationRequest::snapshot(
        Seqno(seqno),
        Seqno(snapshot),
        written.iter().map(|w| k(w)).collect(),
        vec![],
        ORIGIN_A,
    )
}

fn chained(seqno: u64, snapshot: u64, written: &[&str], deps: &[u64]) -> CertificationRequest {
    let mut request = snapshot_txn(seqno, snapshot, written);
    request.local_deps = deps.iter().map(|&d| Seqno(d)).collect();
    request
}

fn commit(depends_on: u64) -> Verdict {
    Verdict::Commit {
        depends_on: Seqno(depends_on),
    }
}

fn conflict(key: &str, winner: u64) -> Verdict {
    Verdict::Abort(AbortReason::Conflict {
        key: k(key),
        winner_seqno: Seqno(winner),
    })
}

#[test]
fn first_committer_wins_a_write_write_conflict_under_snapshot() {
    let mut c = certifier();
    // Two transactions read at snapshot 0 and both write x: the first ordered wins.
    assert_eq!(c.certify(&snapshot_txn(1, 0, &["x"])), commit(0));
    assert_eq!(c.certify(&snapshot_txn(2, 0, &["x"])), conflict("x", 1));
    // One that saw seqno 1 commits, and depends on it.
    assert_eq!(c.certify(&snapshot_txn(3, 1, &["x", "y"])), commit(1));
    assert_eq!(c.last_writer(k("x")), Some(Seqno(3)));
    let stats = c.stats();
    assert_eq!(stats.transactions_checked, 3);
    assert_eq!(stats.conflicts_detected, 1);
    assert_eq!(stats.last_conflict_free_seqno, Seqno(3));
    assert_eq!(stats.rows_validating, 2);
}

#[test]
fn serializable_blind_write_never_conflicts_but_a_stale_read_aborts() {
    let mut c = certifier();
    assert_eq!(c.certify(&snapshot_txn(1, 0, &["x"])), commit(0));
    // Blind write of x at snapshot 0: not checked, commits after seqno 1's write.
    let blind =
        CertificationRequest::serializable(Seqno(2), Seqno(0), &[], vec![k("x")], vec![], ORIGIN_B);
    assert_eq!(c.certify(&blind), commit(1));
    // Reads x at snapshot 1, but x was written at 2 since: abort.
    let stale = CertificationRequest::serializable(
        Seqno(3),
        Seqno(1),
        &[k("x")],
        vec![k("y")],
        vec![],
        ORIGIN_B,
    );
    assert_eq!(c.certify(&stale), conflict("x", 2));
    // Reads x at snapshot 2: fine; depends on the read key's writer.
    let fresh = CertificationRequest::serializable(
        Seqno(4),
        Seqno(2),
        &[k("x")],
        vec![k("y")],
        vec![],
        ORIGIN_B,
    );
    assert_eq!(c.certify(&fresh), commit(2));
}

#[test]
fn command_checks_watched_keys_at_their_watch_time() {
    let mut c = certifier();
    assert_eq!(c.certify(&snapshot_txn(1, 0, &["w"])), commit(0));
    assert_eq!(c.certify(&snapshot_txn(2, 1, &["w"])), commit(1));
    // WATCHed w at 1, executed at snapshot 2: w's write at 2 is after the watch.
    let watched = CertificationRequest::command(
        Seqno(3),
        Seqno(2),
        vec![CheckedKey {
            key: k("w"),
            observed_at: Seqno(1),
        }],
        vec![k("z")],
        vec![],
        ORIGIN_B,
    );
    assert_eq!(c.certify(&watched), conflict("w", 2));
}

#[test]
fn chained_txn_commits_when_its_dependency_committed() {
    let mut c = certifier();
    // Both read at snapshot 0 on one member; 2 overwrote 1's key through the overlay.
    assert_eq!(c.certify(&snapshot_txn(1, 0, &["hot"])), commit(0));
    assert_eq!(c.certify(&chained(2, 0, &["hot"], &[1])), commit(1));
    // A chain of three: 3 depends on 2 only (2 is now the last writer).
    assert_eq!(c.certify(&chained(3, 0, &["hot"], &[2])), commit(2));
    // Listing 1 alone does not excuse 3's write: the last writer is 3, not listed.
    assert_eq!(
        c.certify(&chained(4, 0, &["hot"], &[1])),
        conflict("hot", 3)
    );
}

#[test]
fn chained_txn_aborts_when_its_dependency_aborted() {
    let mut c = certifier();
    assert_eq!(c.certify(&snapshot_txn(1, 0, &["x"])), commit(0));
    // 2 (from member B, snapshot 0) loses to 1.
    assert_eq!(c.certify(&snapshot_txn(2, 0, &["x"])), conflict("x", 1));
    // 3 chained to 2 on B: 2 aborted, so 3 aborts even though its own key is new.
    assert_eq!(
        c.certify(&chained(3, 0, &["fresh"], &[2])),
        Verdict::Abort(AbortReason::DependencyAborted {
            dependency: Seqno(2)
        })
    );
    assert_eq!(c.last_writer(k("fresh")), None);
    assert_eq!(c.stats().dependency_aborts, 1);
}

#[test]
fn chained_txn_aborts_when_its_dependency_is_not_certified() {
    let mut c = certifier();
    assert_eq!(c.certify(&snapshot_txn(1, 0, &["x"])), commit(0));
    // Seqno 2 carried no transaction (a low watermark, say); a dependency at or after
    // the transaction itself, or seqno 0, was never certified before it either.
    for (seqno, dependency) in [(3, 2), (4, 4), (5, 9), (6, 0)] {
        assert_eq!(
            c.certify(&chained(seqno, 0, &["y"], &[dependency])),
            Verdict::Abort(AbortReason::DependencyNotCertified {
                dependency: Seqno(dependency)
            }),
            "dependency {dependency}"
        );
    }
    assert_eq!(c.stats().dependency_aborts, 4);
}

#[test]
fn dependency_older_than_the_window_is_forgotten_even_if_it_committed() {
    let mut c = certifier();
    assert_eq!(c.certify(&snapshot_txn(1, 0, &["x"])), commit(0));
    let late = 1 + constants::VERDICT_WINDOW_SEQNOS;
    assert_eq!(
        c.certify(&chained(late, 1, &["y"], &[1])),
        Verdict::Abort(AbortReason::DependencyForgotten {
            dependency: Seqno(1)
        })
    );
    // Just inside the window it is still known.
    let mut c = certifier();
    assert_eq!(c.certify(&snapshot_txn(1, 0, &["x"])), commit(0));
    assert_eq!(c.certify(&chained(late - 1, 1, &["y"], &[1])), commit(0));
}

#[test]
fn snapshot_older_than_gc_is_too_old() {
    let mut c = certifier();
    c.set_members(&[ORIGIN_A, ORIGIN_B]).expect("members");
    assert_eq!(c.certify(&snapshot_txn(1, 0, &["x"])), commit(0));
    c.on_low_watermark(ORIGIN_A, Seqno(5));
    assert_eq!(c.gc_seqno(), Seqno(0), "B has not reported");
    c.on_low_watermark(ORIGIN_B, Seqno(3));
    assert_eq!(c.gc_seqno(), Seqno(3));
    assert_eq!(
        c.certify(&snapshot_txn(6, 2, &["x"])),
        Verdict::Abort(AbortReason::SnapshotTooOld {
            observed_at: Seqno(2),
            gc_seqno: Seqno(3)
        })
    );
    // A WATCH observation below gc is too old too, even with a fresh snapshot.
    let watched = CertificationRequest::command(
        Seqno(7),
        Seqno(6),
        vec![CheckedKey {
            key: k("x"),
            observed_at: Seqno(1),
        }],
        vec![],
        vec![],
        ORIGIN_A,
    );
    assert!(matches!(
        c.certify(&watched),
        Verdict::Abort(AbortReason::SnapshotTooOld { .. })
    ));
    assert_eq!(c.certify(&snapshot_txn(8, 3, &["x"])), commit(3));
    assert_eq!(c.stats().snapshot_too_old_aborts, 2);
}

#[test]
fn gc_makes_old_entries_dead_and_clamps_depends_on() {
    let mut c = certifier();
    c.set_members(&[ORIGIN_A]).expect("members");
    assert_eq!(c.certify(&snapshot_txn(1, 0, &["x"])), commit(0));
    assert_eq!(c.certify(&snapshot_txn(2, 1, &["y"])), commit(0));
    c.on_low_watermark(ORIGIN_A, Seqno(1));
    assert_eq!(c.last_writer(k("x")), None, "x's entry is dead");
    assert_eq!(c.reader().last_writer(k("x")), None);
    assert_eq!(c.last_writer(k("y")), Some(Seqno(2)));
    // x's previous writer is dead: depends_on is the gc seqno, not 0 and not 1's
    // (physically present or not).
    assert_eq!(c.certify(&snapshot_txn(3, 2, &["x"])), commit(1));
    // The gc seqno never goes back, whatever is reported.
    c.on_low_watermark(ORIGIN_A, Seqno(0));
    c.set_members(&[ORIGIN_A, ORIGIN_B]).expect("members");
    assert_eq!(c.gc_seqno(), Seqno(1));
    assert_eq!(c.stats().gc_seqno, Seqno(1));
    assert_eq!(c.reclaim_step(1 << 20), 0, "x was rewritten, nothing dead");
}

#[test]
fn depends_on_is_the_highest_previous_writer_of_checked_and_written_keys() {
    let mut c = certifier();
    assert_eq!(c.certify(&snapshot_txn(1, 0, &["a"])), commit(0));
    assert_eq!(c.certify(&snapshot_txn(2, 0, &["b"])), commit(0));
    assert_eq!(c.certify(&snapshot_txn(3, 0, &["c"])), commit(0));
    // Reads c (written at 3), writes a (written at 1): depends on 3.
    let request = CertificationRequest::serializable(
        Seqno(4),
        Seqno(3),
        &[k("c")],
        vec![k("a")],
        vec![],
        ORIGIN_A,
    );
    assert_eq!(c.certify(&request), commit(3));
    assert_eq!(c.certify(&snapshot_txn(5, 4, &["b", "new"])), commit(2));
}

#[test]
fn full_shard_aborts_and_writes_nothing() {
    // One shard of 8 slots: at most 7 live entries.
    let config = IndexConfig {
        shard_bits: 0,
        shard_slot_bits: 3,
    };
    let mut c = Certifier::new(config).expect("valid");
    c.set_members(&[ORIGIN_A]).expect("members");
    let names = ["k0", "k1", "k2", "k3", "k4", "k5"];
    assert_eq!(c.certify(&snapshot_txn(1, 0, &names)), commit(0));
    // Two new keys with room for one: abort, and neither is written.
    assert_eq!(
        c.certify(&snapshot_txn(2, 1, &["k6", "k7"])),
        Verdict::Abort(AbortReason::IndexFull { shard: 0 })
    );
    assert_eq!(c.last_writer(k("k6")), None);
    // The same key twice counts once.
    assert_eq!(c.certify(&snapshot_txn(3, 1, &["k6", "k6"])), commit(0));
    // Rewriting live keys needs no room.
    assert_eq!(c.certify(&snapshot_txn(4, 3, &["k0", "k6"])), commit(3));
    assert_eq!(c.stats().index_full_aborts, 1);
    // Once gc passes seqno 1, five entries are dead and there is room again, with no
    // reclamation having run.
    c.on_low_watermark(ORIGIN_A, Seqno(1));
    assert_eq!(
        c.certify(&snapshot_txn(5, 4, &["n1", "n2", "n3", "n4", "n5"])),
        commit(1)
    );
}

#[test]
fn too_many_members_is_a_typed_error() {
    let mut c = certifier();
    let members: Vec<MemberId> = (0..=constants::MEMBERS_MAX as u128).map(MemberId).collect();
    assert_eq!(
        c.set_members(&members),
        Err(TooManyMembers {
            members: constants::MEMBERS_MAX + 1,
            max: constants::MEMBERS_MAX
        })
    );
}

#[test]
fn early_check_at_the_origin_predicts_the_conflict() {
    let mut c = certifier();
    let reader = c.reader();
    assert_eq!(c.certify(&snapshot_txn(1, 0, &["x"])), commit(0));
    let checked = [CheckedKey {
        key: k("x"),
        observed_at: Seqno(0),
    }];
    let early = reader.early_conflict(&checked, &[]);
    assert_eq!(
        early,
        Some(AbortReason::Conflict {
            key: k("x"),
            winner_seqno: Seqno(1)
        })
    );
    assert_eq!(reader.early_conflict(&checked, &[Seqno(1)]), None);
    assert_eq!(
        c.certify(&snapshot_txn(2, 0, &["x"])),
        Verdict::Abort(early.unwrap())
    );
}

#[test]
#[should_panic(expected = "requests come in seqno order")]
fn requests_out_of_order_are_a_programmer_error() {
    let mut c = certifier();
    c.certify(&snapshot_txn(5, 0, &["x"]));
    c.certify(&snapshot_txn(5, 0, &["y"]));
}

#[test]
fn certify_batch_decides_exactly_as_one_by_one() {
    let requests: Vec<CertificationRequest> = (1..=64u64)
        .map(|n| {
            let names = [format!("k{}", n % 5), format!("k{}", n % 7)];
            let written = names.iter().map(|name| k(name)).collect();
            let deps = if n % 3 == 0 {
                vec![Seqno(n - 1)]
            } else {
                vec![]
            };
            CertificationRequest::snapshot(
                Seqno(n),
                Seqno(n.saturating_sub(3)),
                written,
                deps,
                ORIGIN_A,
            )
        })
        .collect();
    let mut one_by_one = certifier();
    let expected: Vec<Verdict> = requests.iter().map(|r| one_by_one.certify(r)).collect();
    assert!(expected.iter().any(Verdict::is_commit));
    assert!(expected.iter().any(|v| !v.is_commit()));
    let mut batched = certifier();
    let mut verdicts = Vec::new();
    batched.certify_batch(&requests[..10], &mut verdicts);
    batched.certify_batch(&requests[10..], &mut verdicts);
    assert_eq!(verdicts, expected);
    assert_eq!(batched.stats(), one_by_one.stats());
}

#[test]
fn physical_reclamation_never_changes_a_verdict() {
    // One shard of 16 slots (14 live at most) and 24 keys: it fills, gc frees it, it
    // fills again. `eager` reclaims everything after every step, `lazy` never (only the
    // forced sweeps of a full shard), `trickle` one slot at a time.
    let config = IndexConfig {
        shard_bits: 0,
        shard_slot_bits: 4,
    };
    let mut eager = Certifier::new(config).expect("valid");
    let mut lazy = Certifier::new(config).expect("valid");
    let mut trickle = Certifier::new(config).expect("valid");
    let mut all = [&mut eager, &mut lazy, &mut trickle];
    for c in &mut all {
        c.set_members(&[ORIGIN_A, ORIGIN_B]).expect("members");
    }
    let mut verdicts = Vec::new();
    for n in 1..=300u64 {
        if n % 7 == 0 {
            let lagging = if n % 2 == 0 { ORIGIN_A } else { ORIGIN_B };
            for c in &mut all {
                c.on_low_watermark(lagging, Seqno(n - 5));
            }
            continue;
        }
        let names = [format!("k{}", n * 7 % 24), format!("k{}", n * 11 % 24)];
        let written = names.iter().map(|name| k(name)).collect();
        let request =
            CertificationRequest::snapshot(Seqno(n), Seqno(n - 1), written, vec![], ORIGIN_A);
        let outcomes: Vec<Verdict> = all.iter_mut().map(|c| c.certify(&request)).collect();
        assert!(
            outcomes.iter().all(|v| *v == outcomes[0]),
            "seqno {n}: {outcomes:?}"
        );
        verdicts.push(outcomes[0]);
        all[0].reclaim_step(1 << 10);
        all[2].reclaim_step(1);
    }
    assert!(verdicts
        .iter()
        .any(|v| matches!(v, Verdict::Abort(AbortReason::IndexFull { .. }))));
    assert!(verdicts.iter().filter(|v| v.is_commit()).count() > 100);
    assert!(eager.stats().rows_validating <= lazy.stats().rows_validating);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    eager.encode_state(&mut a);
    lazy.encode_state(&mut b);
    assert_eq!(a, b, "the encoded state is the logical state");
}

//! The certifier state a snapshot carries: it round-trips exactly, and every kind of bad
//! bytes is a typed error, never a panic.

use proptest::prelude::*;
use tutti_engine::certifier::{
    CertificationRequest, Certifier, IndexConfig, KeyHash, StateError, Verdict,
};
use tutti_net::gcs::MemberId;
use tutti_storage::Seqno;
use xxhash_rust::xxh3::xxh3_64;

const A: MemberId = MemberId(0xaaaa);
const B: MemberId = MemberId(0xbbbb);

fn key(n: u64) -> KeyHash {
    KeyHash::of(&n.to_le_bytes())
}

/// A certifier with members, a gc seqno, live and dead entries, and both verdicts.
fn populated() -> Certifier {
    let mut c = Certifier::new(IndexConfig {
        shard_bits: 2,
        shard_slot_bits: 4,
    })
    .expect("valid geometry");
    c.set_members(&[B, A]).expect("members");
    for n in 1..=20 {
        let request =
            CertificationRequest::snapshot(Seqno(n), Seqno(0), vec![key(n % 7)], vec![], A);
        c.certify(&request);
    }
    c.on_low_watermark(A, Seqno(9));
    c.on_low_watermark(B, Seqno(4));
    c
}

/// Where the live entry count is, and the count.
fn entry_count(bytes: &[u8]) -> (usize, usize) {
    let window = u32::from_le_bytes(bytes[24..28].try_into().unwrap()) as usize;
    let members = u32::from_le_bytes(bytes[28..32].try_into().unwrap()) as usize;
    let at = 32 + members * 24 + window;
    let count = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    (at, count as usize)
}

fn encode(c: &Certifier) -> Vec<u8> {
    let mut out = Vec::new();
    c.encode_state(&mut out);
    out
}

/// Replaces the trailing checksum so that a content defect is reached past it.
fn reseal(bytes: &mut [u8]) {
    let body = bytes.len() - 8;
    let checksum = xxh3_64(&bytes[..body]);
    bytes[body..].copy_from_slice(&checksum.to_le_bytes());
}

#[test]
fn state_round_trips_and_the_decoded_certifier_decides_the_same() {
    let mut original = populated();
    let bytes = encode(&original);
    let mut decoded = Certifier::decode_state(&bytes).expect("valid state");
    assert_eq!(encode(&decoded), bytes);
    assert_eq!(decoded.gc_seqno(), Seqno(4));
    assert_eq!(decoded.last_certified(), Seqno(20));
    for n in 0..7 {
        assert_eq!(
            decoded.last_writer(key(n)),
            original.last_writer(key(n)),
            "key {n}"
        );
    }
    let mut verdicts = Vec::new();
    for n in 21..40 {
        let request = CertificationRequest::snapshot(
            Seqno(n),
            Seqno(n - 3),
            vec![key(n % 9)],
            if n % 2 == 1 {
                vec![Seqno(n - 1)]
            } else {
                vec![]
            },
            A,
        );
        let verdict = original.certify(&request);
        assert_eq!(decoded.certify(&request), verdict, "seqno {n}");
        verdicts.push(verdict);
    }
    // 21 chains to 20, which conflicted at snapshot 0; 23 chains to 22 and writes a key
    // last written at 5, before its snapshot.
    assert!(!verdicts[0].is_commit());
    assert!(verdicts[2].is_commit());
    decoded.on_low_watermark(A, Seqno(30));
    decoded.on_low_watermark(B, Seqno(30));
    assert_eq!(decoded.gc_seqno(), Seqno(30));
}

#[test]
fn layout_matches_the_documented_offsets() {
    let bytes = encode(&populated());
    assert_eq!(&bytes[0..4], b"TCST");
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), 1);
    assert_eq!((bytes[6], bytes[7]), (2, 4));
    assert_eq!(u64::from_le_bytes(bytes[8..16].try_into().unwrap()), 4);
    assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), 20);
    assert_eq!(u32::from_le_bytes(bytes[28..32].try_into().unwrap()), 2);
    // Members ascending by id: A before B.
    assert_eq!(u128::from_le_bytes(bytes[32..48].try_into().unwrap()), A.0);
    let (entries_at, count) = entry_count(&bytes);
    // Keys 0..7 written at 1..7, gc at 4: three live entries.
    assert_eq!(count, 3);
    assert_eq!(bytes.len(), entries_at + 8 + count * 16 + 8);
}

#[test]
fn every_truncation_is_a_typed_error() {
    let bytes = encode(&populated());
    for len in 0..bytes.len() {
        assert!(
            Certifier::decode_state(&bytes[..len]).is_err(),
            "length {len}"
        );
    }
}

#[test]
fn named_defects_are_named() {
    let bytes = encode(&populated());
    let mut foreign = bytes.clone();
    foreign[0] = b'X';
    assert!(matches!(
        Certifier::decode_state(&foreign),
        Err(StateError::Magic { .. })
    ));
    let mut future = bytes.clone();
    future[4] = 9;
    assert_eq!(
        Certifier::decode_state(&future).err(),
        Some(StateError::Version { found: 9 })
    );
    let mut damaged = bytes.clone();
    damaged[20] ^= 1;
    assert!(matches!(
        Certifier::decode_state(&damaged),
        Err(StateError::Checksum { .. })
    ));
    let mut geometry = bytes.clone();
    geometry[7] = 40;
    reseal(&mut geometry);
    assert!(matches!(
        Certifier::decode_state(&geometry),
        Err(StateError::Geometry(_))
    ));
    let mut members = bytes.clone();
    members[32..48].copy_from_slice(&B.0.to_le_bytes());
    reseal(&mut members);
    assert_eq!(
        Certifier::decode_state(&members).err(),
        Some(StateError::MemberOrder { position: 1 })
    );
    let mut verdict = bytes.clone();
    verdict[32 + 48] = 7;
    reseal(&mut verdict);
    assert_eq!(
        Certifier::decode_state(&verdict).err(),
        Some(StateError::Verdicts)
    );
    // The first entry's last writer set below the gc seqno.
    let mut entry = bytes.clone();
    let first_entry = entry_count(&bytes).0 + 8;
    entry[first_entry + 8..first_entry + 16].copy_from_slice(&1u64.to_le_bytes());
    reseal(&mut entry);
    assert!(matches!(
        Certifier::decode_state(&entry),
        Err(StateError::Entry { position: 0, .. })
    ));
    let mut trailing = bytes[..bytes.len() - 8].to_vec();
    trailing.push(0);
    trailing.extend_from_slice(&[0; 8]);
    reseal(&mut trailing);
    assert!(matches!(
        Certifier::decode_state(&trailing),
        Err(StateError::TrailingBytes { extra: 1 })
    ));
}

#[test]
fn entries_that_overflow_a_shard_are_refused() {
    // One shard of 8 slots holds 7 live entries; claim 8 in the encoding.
    let mut c = Certifier::new(IndexConfig {
        shard_bits: 0,
        shard_slot_bits: 3,
    })
    .expect("valid");
    let written = (0..7).map(key).collect();
    assert!(c
        .certify(&CertificationRequest::snapshot(
            Seqno(1),
            Seqno(0),
            written,
            vec![],
            A
        ))
        .is_commit());
    let bytes = encode(&c);
    let mut body = bytes[..bytes.len() - 8].to_vec();
    let count_at = body.len() - 7 * 16 - 8;
    body[count_at..count_at + 8].copy_from_slice(&8u64.to_le_bytes());
    let mut extra = (u64::MAX - 1).to_le_bytes().to_vec();
    extra.extend_from_slice(&1u64.to_le_bytes());
    body.extend_from_slice(&extra);
    body.extend_from_slice(&[0; 8]);
    reseal(&mut body);
    assert_eq!(
        Certifier::decode_state(&body).err(),
        Some(StateError::ShardFull { shard: 0 })
    );
}

#[test]
fn a_fresh_certifier_round_trips() {
    let c = Certifier::new(IndexConfig::for_live_entries(100)).expect("valid");
    let bytes = encode(&c);
    let decoded = Certifier::decode_state(&bytes).expect("valid");
    assert_eq!(encode(&decoded), bytes);
    let mut decoded = decoded;
    assert_eq!(
        decoded.certify(&CertificationRequest::snapshot(
            Seqno(1),
            Seqno(0),
            vec![key(1)],
            vec![],
            A
        )),
        Verdict::Commit {
            depends_on: Seqno(0)
        }
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// Any change of bytes, resealed or not, decodes to an error or a state, never a panic.
    #[test]
    fn mutated_state_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        seal in any::<bool>(),
    ) {
        let mut bytes = encode(&populated());
        for (at, byte) in edits {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        if seal {
            reseal(&mut bytes);
        }
        let _ = Certifier::decode_state(&bytes);
    }
}

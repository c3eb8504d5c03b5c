//! Property tests of the frame decoder with bounded random input: arbitrary bytes never
//! make it panic, and whatever it accepts is exactly a frame the encoder would write.

use proptest::prelude::*;
use tutti_net::wire::{decode_frame, encode_frame, FrameOrigin};

fn reencode(kind: u16, origin: FrameOrigin, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, kind, origin, |b| b.extend_from_slice(body)).expect("body fits");
    out
}

fn origin() -> impl Strategy<Value = FrameOrigin> {
    (any::<u128>(), any::<u128>(), any::<u64>()).prop_map(|(group_name, sender, incarnation)| {
        FrameOrigin {
            group_name,
            sender,
            incarnation,
        }
    })
}

/// Checks the decoder's contract on `bytes`: no panic, and an accepted frame re-encodes
/// to the very bytes it was decoded from.
fn assert_decoder_contract(bytes: &[u8]) {
    if let Ok(Some((frame, used))) = decode_frame(bytes) {
        let again = reencode(frame.header.kind, frame.header.origin, frame.body);
        assert_eq!(
            &bytes[..used],
            &again[..],
            "accepted a frame the encoder would not write"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        assert_decoder_contract(&bytes);
    }

    #[test]
    fn damaged_frames_are_rejected_or_incomplete(
        kind in any::<u16>(),
        origin in origin(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
        damage in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let good = reencode(kind, origin, &body);
        let mut bad = good.clone();
        for (index, xor) in &damage {
            let at = index.index(bad.len());
            bad[at] ^= xor;
        }
        // Rejected or incomplete, unless the damage cancelled out: then it is the original.
        if let Ok(Some((frame, used))) = decode_frame(&bad) {
            prop_assert_eq!(&bad[..used], &good[..]);
            prop_assert_eq!(frame.body, &body[..]);
        }
    }

    #[test]
    fn valid_frames_survive_any_split(
        kind in any::<u16>(),
        origin in origin(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = reencode(kind, origin, &body);
        let cut = cut.index(bytes.len());
        prop_assert_eq!(decode_frame(&bytes[..cut]).unwrap(), None);
        let (frame, used) = decode_frame(&bytes).unwrap().unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(frame.header.kind, kind);
        prop_assert_eq!(frame.header.origin, origin);
        prop_assert_eq!(frame.body, &body[..]);
    }
}

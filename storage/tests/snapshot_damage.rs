//! Damaged snapshot files: truncation at any offset and flipped bytes anywhere give a typed
//! error naming the file, never a panic and never a silently shorter snapshot.

use proptest::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tutti_storage::snapshot::{
    SnapshotError, SnapshotReader, SnapshotWriter, BLOCK_HEADER_BYTES, HEADER_BYTES, TRAILER_BYTES,
};
use tutti_storage::Seqno;

const ENTRIES: u32 = 4000;
const META: &[u8] = b"index gc_seqno low-watermarks counters roles";

/// The bytes of an intact snapshot of several blocks, built once.
fn intact() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = directory.path().join("intact");
        let mut writer = SnapshotWriter::create(&path, Seqno(77), META).expect("create");
        for index in 0..ENTRIES {
            let value = vec![(index % 256) as u8; (index % 40) as usize];
            writer
                .push(format!("key-{index:06}").as_bytes(), &value)
                .expect("push");
        }
        let summary = writer.finish().expect("finish");
        assert!(summary.blocks >= 3, "{} blocks", summary.blocks);
        fs::read(&path).expect("read back")
    })
}

/// Reads every entry of the file at `path`.
/// Every (key, value) of a file.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn read_all(path: &Path) -> Result<Entries, SnapshotError> {
    let reader = SnapshotReader::open(path)?;
    assert_eq!(reader.meta(), META, "a meta blob handed out was verified");
    reader.collect()
}

fn write_damaged(directory: &Path, bytes: &[u8]) -> PathBuf {
    let path = directory.join("damaged");
    fs::write(&path, bytes).expect("write the damaged copy");
    path
}

/// The file must fail, with an error that names it.
fn assert_rejected(path: &Path) -> SnapshotError {
    let error = read_all(path).expect_err("a damaged file must not read as a snapshot");
    assert!(
        error.to_string().contains("damaged"),
        "the error names the file: {error}"
    );
    error
}

#[test]
fn the_intact_file_reads_back_completely() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = write_damaged(directory.path(), intact());
    assert_eq!(read_all(&path).expect("intact").len(), ENTRIES as usize);
}

#[test]
fn a_file_cut_at_a_block_boundary_or_before_the_trailer_fails() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let bytes = intact();
    let trailer_start = bytes.len() - TRAILER_BYTES;
    let first_block = HEADER_BYTES + META.len();
    for cut in [
        0,
        HEADER_BYTES,
        first_block,
        first_block + BLOCK_HEADER_BYTES,
        trailer_start,
        bytes.len() - 1,
    ] {
        let path = write_damaged(directory.path(), &bytes[..cut]);
        let error = assert_rejected(&path);
        assert!(
            matches!(error, SnapshotError::Truncated { .. }),
            "cut at {cut}: {error}"
        );
    }
}

#[test]
fn bytes_after_the_trailer_fail() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let mut bytes = intact().to_vec();
    bytes.push(0);
    let error = assert_rejected(&write_damaged(directory.path(), &bytes));
    assert!(
        matches!(
            error,
            SnapshotError::Corrupt {
                reason: "bytes follow the trailer",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_duplicated_block_fails() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let bytes = intact();
    let first_block = HEADER_BYTES + META.len();
    let payload_length = u32::from_le_bytes(
        bytes[first_block + 4..first_block + 8]
            .try_into()
            .expect("4 bytes"),
    ) as usize;
    let block_end = first_block + BLOCK_HEADER_BYTES + payload_length;
    let mut damaged = bytes[..block_end].to_vec();
    damaged.extend_from_slice(&bytes[first_block..]);
    let error = assert_rejected(&write_damaged(directory.path(), &damaged));
    assert!(matches!(error, SnapshotError::Corrupt { .. }), "{error}");
}

#[test]
fn the_reader_stops_after_an_error() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let bytes = intact();
    let path = write_damaged(directory.path(), &bytes[..bytes.len() / 2]);
    let mut reader = SnapshotReader::open(&path).expect("the header is intact");
    let error = loop {
        match reader.next_entry() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a truncated file ended cleanly"),
            Err(error) => break error,
        }
    };
    assert!(matches!(error, SnapshotError::Truncated { .. }), "{error}");
    assert!(matches!(
        reader.next_entry(),
        Err(SnapshotError::Stopped { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn truncation_at_any_offset_fails(cut in any::<prop::sample::Index>()) {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let bytes = intact();
        let cut = cut.index(bytes.len());
        let error = assert_rejected(&write_damaged(directory.path(), &bytes[..cut]));
        prop_assert!(matches!(error, SnapshotError::Truncated { .. }), "cut at {}: {}", cut, error);
    }

    #[test]
    fn flipped_bytes_anywhere_fail(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1_u8..=255), 1..4),
    ) {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let mut bytes = intact().to_vec();
        for (position, mask) in flips {
            let offset = position.index(bytes.len());
            bytes[offset] ^= mask;
        }
        prop_assume!(bytes != intact());
        let error = assert_rejected(&write_damaged(directory.path(), &bytes));
        prop_assert!(
            matches!(error, SnapshotError::Corrupt { .. } | SnapshotError::Truncated { .. }),
            "{}", error
        );
    }

    #[test]
    fn flipped_bytes_in_the_header_meta_or_trailer_fail(offset in 0_usize..(HEADER_BYTES + META.len() + TRAILER_BYTES), mask in 1_u8..=255) {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let mut bytes = intact().to_vec();
        let head = HEADER_BYTES + META.len();
        let offset = if offset < head { offset } else { bytes.len() - TRAILER_BYTES + (offset - head) };
        bytes[offset] ^= mask;
        assert_rejected(&write_damaged(directory.path(), &bytes));
    }
}

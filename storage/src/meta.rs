//! The member's metadata record: the few values that must survive every crash whatever
//! `log_sync` says (DESIGN.md sections 4 and 11): the current view, the incarnation and the
//! persisted commit point, plus a bounded opaque `extra` for later protocol state.
//!
//! It owns one small file, [`META_FILE_NAME`], in the data directory. Every
//! [`MetaFile::store`] is durable (fdatasync) before it returns, and a crash in the middle
//! of a store never loses the previous value. It must never interpret `extra`, and never
//! return a value it did not verify.
//!
//! # Format
//!
//! The file is two slots of [`META_SLOT_SIZE`] bytes, at offsets 0 and [`META_SLOT_SIZE`].
//! A store writes the slot *not* holding the current value (generation `g + 1` goes to slot
//! `(g + 1) % 2`) and fdatasyncs; a read takes the valid slot with the highest generation.
//! A torn write can only damage the slot being written, so the other one still holds the
//! previous value. Every integer is little-endian.
//!
//! ```text
//! offset size field         meaning
//!      0    8 magic         META_MAGIC, b"tuttiMET"
//!      8    4 version       META_FORMAT_VERSION
//!     12    4 extra_len     bytes of `extra`, at most META_EXTRA_MAX
//!     16    8 generation    increases by one per store; the highest valid slot wins
//!     24    8 view          the member's current view number
//!     32    8 incarnation   the member's restart counter
//!     40    8 commit_point  the highest seqno known committed
//!     48    n extra         opaque bytes for protocol state
//!   48+n    . zero          up to the checksum
//!   2040    8 checksum      xxh3-64 of bytes 0..2040 of the slot
//! ```
//!
//! The file is first created by writing a temporary file and renaming it into place (then
//! fsyncing the directory), so a file that exists always had one complete slot.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use crate::{Seqno, ViewNumber};

/// Name of the metadata file in the data directory.
pub const META_FILE_NAME: &str = "tutti.meta";
/// Size of one slot in bytes; the file holds two.
pub const META_SLOT_SIZE: usize = 2048;
/// Identifies a metadata slot: `b"tuttiMET"` read as a little-endian u64.
pub const META_MAGIC: u64 = u64::from_le_bytes(*b"tuttiMET");
/// The slot format this code writes and reads.
pub const META_FORMAT_VERSION: u32 = 1;
/// Bytes of the fixed fields in front of `extra`.
const META_FIXED_SIZE: usize = 48;
/// Offset of the checksum in a slot.
const META_CHECKSUM_OFFSET: usize = META_SLOT_SIZE - 8;
/// The most bytes `extra` may hold.
pub const META_EXTRA_MAX: usize = 1536;

const _: () = assert!(META_FIXED_SIZE + META_EXTRA_MAX <= META_CHECKSUM_OFFSET);

/// The values the metadata file keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// The member's current view: persisted before it answers in that view.
    pub view: ViewNumber,
    /// The member's restart counter, so messages from before a crash are told apart.
    pub incarnation: u64,
    /// The highest seqno known committed: log recovery must not end before it.
    pub commit_point: Seqno,
    /// Opaque protocol state, at most [`META_EXTRA_MAX`] bytes.
    pub extra: Vec<u8>,
}

/// Why reading or storing the metadata failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// A file system call on the metadata file failed.
    #[error("metadata I/O failed while {action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Neither slot verifies: the member's view, incarnation and commit point are lost.
    #[error(
        "metadata file `{path}` is corrupt: neither slot verifies ({reason}); the member's \
         state is unknown: restore the file or re-provision this member from its peers"
    )]
    Corrupt {
        /// The metadata file.
        path: PathBuf,
        /// Why the first slot was rejected.
        reason: &'static str,
    },
    /// `extra` is over the limit.
    #[error("metadata extra of {len} bytes refused: at most {META_EXTRA_MAX} bytes fit")]
    ExtraTooLarge {
        /// The refused length.
        len: usize,
    },
}

fn io_error<'p>(
    action: &'static str,
    path: &'p Path,
) -> impl FnOnce(std::io::Error) -> MetaError + 'p {
    move |source| MetaError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(word)
}

/// One slot's bytes for `meta` at `generation`.
fn encode_slot(meta: &Meta, generation: u64) -> [u8; META_SLOT_SIZE] {
    assert!(
        meta.extra.len() <= META_EXTRA_MAX,
        "extra length is checked by the caller"
    );
    let mut slot = [0u8; META_SLOT_SIZE];
    slot[0..8].copy_from_slice(&META_MAGIC.to_le_bytes());
    slot[8..12].copy_from_slice(&META_FORMAT_VERSION.to_le_bytes());
    slot[12..16].copy_from_slice(&(meta.extra.len() as u32).to_le_bytes());
    slot[16..24].copy_from_slice(&generation.to_le_bytes());
    slot[24..32].copy_from_slice(&meta.view.0.to_le_bytes());
    slot[32..40].copy_from_slice(&meta.incarnation.to_le_bytes());
    slot[40..48].copy_from_slice(&meta.commit_point.0.to_le_bytes());
    slot[META_FIXED_SIZE..META_FIXED_SIZE + meta.extra.len()].copy_from_slice(&meta.extra);
    let checksum = xxh3_64(&slot[..META_CHECKSUM_OFFSET]);
    slot[META_CHECKSUM_OFFSET..].copy_from_slice(&checksum.to_le_bytes());
    slot
}

/// The value and generation in `slot`, or why the slot is rejected.
fn decode_slot(slot: &[u8]) -> Result<(Meta, u64), &'static str> {
    if slot.len() < META_SLOT_SIZE {
        return Err("slot cut short by the end of the file");
    }
    if u64_at(slot, 0) != META_MAGIC {
        return Err("bad slot magic");
    }
    if u64_at(slot, META_CHECKSUM_OFFSET) != xxh3_64(&slot[..META_CHECKSUM_OFFSET]) {
        return Err("slot checksum mismatch");
    }
    let version = u32::from_le_bytes([slot[8], slot[9], slot[10], slot[11]]);
    if version != META_FORMAT_VERSION {
        return Err("unknown metadata format version");
    }
    let extra_len = u32::from_le_bytes([slot[12], slot[13], slot[14], slot[15]]) as usize;
    if extra_len > META_EXTRA_MAX {
        return Err("extra length over META_EXTRA_MAX");
    }
    let meta = Meta {
        view: ViewNumber(u64_at(slot, 24)),
        incarnation: u64_at(slot, 32),
        commit_point: Seqno(u64_at(slot, 40)),
        extra: slot[META_FIXED_SIZE..META_FIXED_SIZE + extra_len].to_vec(),
    };
    Ok((meta, u64_at(slot, 16)))
}

/// The metadata file of one data directory, and the value it holds.
#[derive(Debug)]
pub struct MetaFile {
    /// The data directory, fsynced when the file is created.
    dir: PathBuf,
    /// The metadata file's path, named in errors.
    path: PathBuf,
    /// The open file, once it exists.
    file: Option<File>,
    /// Generation of the current value (0: never stored).
    generation: u64,
    /// The current value.
    current: Meta,
}

impl MetaFile {
    /// Reads the metadata in `dir`. A missing file is a fresh member: default values.
    pub fn open(dir: &Path) -> Result<MetaFile, MetaError> {
        let path = dir.join(META_FILE_NAME);
        let mut meta = MetaFile {
            dir: dir.to_path_buf(),
            path,
            file: None,
            generation: 0,
            current: Meta::default(),
        };
        let file = match OpenOptions::new().read(true).write(true).open(&meta.path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(meta),
            Err(error) => return Err(io_error("opening", &meta.path)(error)),
        };
        let mut bytes = vec![0u8; 2 * META_SLOT_SIZE];
        let len = read_up_to(&file, &mut bytes).map_err(io_error("reading", &meta.path))?;
        bytes.truncate(len);
        let first = decode_slot(bytes.get(..META_SLOT_SIZE).unwrap_or(&bytes));
        let second = decode_slot(bytes.get(META_SLOT_SIZE..).unwrap_or(&[]));
        let (current, generation) = match (first, second) {
            (Ok(a), Ok(b)) => {
                if a.1 >= b.1 {
                    a
                } else {
                    b
                }
            }
            (Ok(a), Err(_)) => a,
            (Err(_), Ok(b)) => b,
            (Err(reason), Err(_)) => {
                return Err(MetaError::Corrupt {
                    path: meta.path,
                    reason,
                })
            }
        };
        meta.current = current;
        meta.generation = generation;
        meta.file = Some(file);
        Ok(meta)
    }

    /// The current value (defaults for a fresh member).
    pub fn get(&self) -> &Meta {
        &self.current
    }

    /// The path of the metadata file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores `meta`, durable before it returns. On error the previous value is still the
    /// one on disk or the new one is: never neither.
    pub fn store(&mut self, meta: &Meta) -> Result<(), MetaError> {
        if meta.extra.len() > META_EXTRA_MAX {
            return Err(MetaError::ExtraTooLarge {
                len: meta.extra.len(),
            });
        }
        let generation = self.generation + 1;
        let slot = encode_slot(meta, generation);
        assert_eq!(decode_slot(&slot), Ok((meta.clone(), generation)));
        match &self.file {
            Some(file) => {
                let offset = (generation % 2) * META_SLOT_SIZE as u64;
                file.write_all_at(&slot, offset)
                    .map_err(io_error("writing", &self.path))?;
                file.sync_data().map_err(io_error("syncing", &self.path))?;
            }
            None => self.file = Some(self.create(&slot, generation)?),
        }
        self.generation = generation;
        self.current = meta.clone();
        Ok(())
    }

    /// Creates the file holding `slot` at its place for `generation`, atomically.
    fn create(&self, slot: &[u8], generation: u64) -> Result<File, MetaError> {
        let tmp = self.dir.join(format!("{META_FILE_NAME}.tmp"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_error("creating", &tmp))?;
        let mut bytes = vec![0u8; 2 * META_SLOT_SIZE];
        let offset = (generation % 2) as usize * META_SLOT_SIZE;
        bytes[offset..offset + META_SLOT_SIZE].copy_from_slice(slot);
        file.write_all_at(&bytes, 0)
            .map_err(io_error("writing", &tmp))?;
        file.sync_all().map_err(io_error("syncing", &tmp))?;
        fs::rename(&tmp, &self.path).map_err(io_error("renaming into", &self.path))?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error("syncing directory", &self.dir))?;
        Ok(file)
    }
}

/// Reads from offset 0 until `buffer` is full or the file ends; returns the bytes read.
fn read_up_to(file: &File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: u64) -> Meta {
        Meta {
            view: ViewNumber(n),
            incarnation: n * 10,
            commit_point: Seqno(n * 100),
            extra: vec![n as u8; (n as usize * 7) % META_EXTRA_MAX],
        }
    }

    #[test]
    fn missing_file_is_a_fresh_member() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = MetaFile::open(dir.path()).expect("open");
        assert_eq!(meta.get(), &Meta::default());
        assert!(!meta.path().exists(), "reading must not create the file");
    }

    #[test]
    fn stores_round_trip_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut meta = MetaFile::open(dir.path()).expect("open");
        for n in 1..=5 {
            meta.store(&sample(n)).expect("store");
            assert_eq!(meta.get(), &sample(n));
            let reopened = MetaFile::open(dir.path()).expect("reopen");
            assert_eq!(reopened.get(), &sample(n), "after store {n}");
        }
        let full = Meta {
            extra: vec![0xAB; META_EXTRA_MAX],
            ..sample(9)
        };
        meta.store(&full).expect("store full extra");
        assert_eq!(MetaFile::open(dir.path()).expect("reopen").get(), &full);
    }

    #[test]
    fn oversized_extra_is_refused_and_keeps_the_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut meta = MetaFile::open(dir.path()).expect("open");
        meta.store(&sample(1)).expect("store");
        let big = Meta {
            extra: vec![1; META_EXTRA_MAX + 1],
            ..sample(2)
        };
        assert!(matches!(
            meta.store(&big),
            Err(MetaError::ExtraTooLarge { len }) if len == META_EXTRA_MAX + 1
        ));
        assert_eq!(
            MetaFile::open(dir.path()).expect("reopen").get(),
            &sample(1)
        );
    }

    /// A crash in the middle of a store tears the slot being written: the slot holding the
    /// previous value is untouched, so the previous value is read back.
    #[test]
    fn torn_store_keeps_the_previous_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut meta = MetaFile::open(dir.path()).expect("open");
        meta.store(&sample(1)).expect("store 1");
        meta.store(&sample(2)).expect("store 2");
        // Generation 3 would go to slot 1, which holds generation 1; generation 2 is in
        // slot 0. Tear slot 0 instead, as if store 2 had crashed half-way.
        let path = meta.path().to_path_buf();
        drop(meta);
        let file = OpenOptions::new().write(true).open(&path).expect("open");
        file.write_all_at(&[0x5A; 100], 20).expect("tear slot 0");
        assert_eq!(
            MetaFile::open(dir.path()).expect("reopen").get(),
            &sample(1)
        );
        // And a store after that recovers normally, and survives a reopen.
        let mut meta = MetaFile::open(dir.path()).expect("reopen");
        meta.store(&sample(3)).expect("store 3");
        assert_eq!(
            MetaFile::open(dir.path()).expect("reopen").get(),
            &sample(3)
        );
    }

    #[test]
    fn both_slots_corrupt_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut meta = MetaFile::open(dir.path()).expect("open");
        meta.store(&sample(1)).expect("store 1");
        meta.store(&sample(2)).expect("store 2");
        let path = meta.path().to_path_buf();
        drop(meta);
        let file = OpenOptions::new().write(true).open(&path).expect("open");
        file.write_all_at(&[0xFF; 8], 30).expect("flip slot 0");
        file.write_all_at(&[0xFF; 8], META_SLOT_SIZE as u64 + 30)
            .expect("flip slot 1");
        match MetaFile::open(dir.path()) {
            Err(error @ MetaError::Corrupt { .. }) => {
                assert!(error.to_string().contains(&path.display().to_string()));
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn short_or_empty_file_is_corrupt_not_fresh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(META_FILE_NAME);
        for len in [0usize, 7, META_SLOT_SIZE - 1] {
            fs::write(&path, vec![0u8; len]).expect("write");
            assert!(matches!(
                MetaFile::open(dir.path()),
                Err(MetaError::Corrupt { .. })
            ));
        }
    }
}

//! Moving a store's state in and out of snapshot files: the writer walks the store's
//! ordered scan at S, the loader installs every entry of a file at version S.
//!
//! Neither ever holds more than one block of entries beyond the store itself.

use super::{SnapshotError, SnapshotReader, SnapshotSummary, SnapshotWriter};
use crate::store::{Store, Value};
use crate::Seqno;
use std::path::Path;

impl Store {
    /// Writes the state visible at `snapshot` to a snapshot file at `path`, carrying `meta`.
    ///
    /// The caller keeps `snapshot` at or below the watermark and holds it open (a
    /// [`crate::store::SnapshotHold`]) until this returns, so reclaim cannot drop versions
    /// the scan still needs. Installs above `snapshot` may go on meanwhile.
    pub fn write_snapshot(
        &self,
        snapshot: Seqno,
        path: &Path,
        meta: &[u8],
    ) -> Result<SnapshotSummary, SnapshotError> {
        let mut writer = SnapshotWriter::create(path, snapshot, meta)?;
        for entry in self.scan(snapshot) {
            writer.push(entry.key(), entry.value())?;
        }
        writer.finish()
    }

    /// Installs every entry of `reader` at the file's seqno and returns how many there
    /// were. On an error the store holds part of the file: discard it.
    pub fn load_snapshot(&self, reader: &mut SnapshotReader) -> Result<u64, SnapshotError> {
        let seqno = reader.seqno();
        let mut entries = 0;
        while let Some(entry) = reader.next_entry()? {
            self.install(entry.key, seqno, Some(Value::from(entry.value)));
            entries += 1;
        }
        Ok(entries)
    }

    /// A new store holding exactly the state of a snapshot file, at the file's seqno.
    pub fn from_snapshot(reader: &mut SnapshotReader) -> Result<Store, SnapshotError> {
        let store = Store::new();
        store.load_snapshot(reader)?;
        Ok(store)
    }
}

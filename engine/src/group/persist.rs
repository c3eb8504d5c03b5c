//! The member's durable state as the group core sees it: the storage log (one record
//! per entry: seqno, view and the encoded entry body) and the metadata file (view,
//! incarnation, last normal view, commit point).
//!
//! It owns the conversions between the gcs's newtypes and storage's, the group commit
//! of entries (one append and one sync for everything issued in one loop turn) and the
//! restore at start-up. It must never decide what to persist: the gcs's commands do.
//!
//! `meta.extra` layout (little-endian): `last_normal_view u64`. The commit point stored
//! is the highest seqno both delivered here and durable in the log, so log recovery can
//! refuse to end before it.

use std::path::Path;

use tutti_net::gcs::{Entry, Incarnation, PersistentMeta, RestoredState, Seqno, ViewId};
use tutti_net::wire::{decode_entry_body, encode_entry};
use tutti_storage::log::{Log, LogOptions, RecoveryReport, SyncPolicy};
use tutti_storage::meta::{Meta, MetaFile};
use tutti_storage::{Seqno as StoreSeqno, ViewNumber};

use super::error::GroupError;

/// Subdirectory of the data directory holding the log segments.
pub const LOG_DIR_NAME: &str = "log";

/// Bytes of `meta.extra` this module writes.
const META_EXTRA_BYTES: usize = 8;

/// Entries issued by `PersistEntries` commands and not yet appended.
#[derive(Default)]
struct PendingBatch {
    /// (seqno, view, encoded body) per entry, in order.
    records: Vec<(u64, u64, Vec<u8>)>,
    /// The view of the last `PersistEntries` that added to the batch.
    issued_view: ViewId,
}

/// The log and metadata of one member.
pub struct Persistence {
    log: Log,
    meta: MetaFile,
    pending: PendingBatch,
    /// Highest seqno delivered here, for the commit point stored with the meta.
    delivered: u64,
}

impl Persistence {
    /// Opens the log and the metadata in `data_dir`.
    pub fn open(
        data_dir: &Path,
        policy: SyncPolicy,
    ) -> Result<(Persistence, RecoveryReport), GroupError> {
        let meta = MetaFile::open(data_dir)?;
        let must_keep = Some(meta.get().commit_point).filter(|seqno| seqno.0 > 0);
        let options = LogOptions {
            sync: policy,
            must_keep,
            ..LogOptions::default()
        };
        let (log, report) = Log::open(&data_dir.join(LOG_DIR_NAME), options)?;
        let persistence = Persistence {
            log,
            meta,
            pending: PendingBatch::default(),
            delivered: 0,
        };
        Ok((persistence, report))
    }

    /// Whether this data directory was used before (a restart rather than a first start).
    pub fn has_state(&self) -> bool {
        self.meta.get().incarnation > 0 || self.log.last_seqno() > StoreSeqno::ZERO
    }

    /// The incarnation the next start runs with: one more than the stored one.
    pub fn next_incarnation(&self) -> u64 {
        self.meta.get().incarnation + 1
    }

    /// The durable state for `Gcs::restart`: the stored meta and every log entry, decoded.
    pub fn restore(
        &self,
        seeds: Vec<tutti_net::gcs::MemberId>,
    ) -> Result<RestoredState, GroupError> {
        let stored = self.meta.get();
        let last_normal_view = stored
            .extra
            .get(..META_EXTRA_BYTES)
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
            .map_or(0, u64::from_le_bytes);
        let meta = PersistentMeta {
            incarnation: Incarnation(stored.incarnation),
            view: ViewId(stored.view.0),
            last_normal_view: ViewId(last_normal_view),
        };
        let mut log = Vec::new();
        for record in self.log.iter(..) {
            let record = record?;
            let body =
                decode_entry_body(record.payload).map_err(|error| GroupError::LogRecord {
                    seqno: record.seqno.0,
                    reason: error.to_string(),
                })?;
            log.push(Entry {
                seqno: Seqno(record.seqno.0),
                view: ViewId(record.view.0),
                body,
            });
        }
        Ok(RestoredState { meta, log, seeds })
    }

    /// Adds the entries of one `PersistEntries` to the pending batch.
    pub fn stage(&mut self, view: ViewId, entries: &[Entry]) {
        for entry in entries {
            let mut payload = Vec::with_capacity(entry.body.size_bytes());
            encode_entry(&mut payload, &entry.body);
            self.pending
                .records
                .push((entry.seqno.0, entry.view.0, payload));
        }
        self.pending.issued_view = view;
    }

    /// Appends the pending batch in one append (one sync under `batch`). Returns the view
    /// the batch was issued in and its last seqno, for `on_persisted`.
    pub fn flush(&mut self) -> Result<Option<(ViewId, Seqno)>, GroupError> {
        if self.pending.records.is_empty() {
            return Ok(None);
        }
        let records = std::mem::take(&mut self.pending.records);
        let last = records.last().map_or(0, |record| record.0);
        let batch = records.iter().map(|(seqno, view, payload)| {
            (StoreSeqno(*seqno), ViewNumber(*view), payload.as_slice())
        });
        self.log.append_batch(batch)?;
        Ok(Some((self.pending.issued_view, Seqno(last))))
    }

    /// Cuts the log after `after`, durably. Pending entries are appended first.
    pub fn truncate_after(&mut self, after: Seqno) -> Result<(), GroupError> {
        self.flush()?;
        self.log.sync()?;
        self.log.truncate_after(StoreSeqno(after.0))?;
        Ok(())
    }

    /// Stores the meta state, durably. Pending entries are appended and synced first: the
    /// core counts everything issued before a `PersistMeta` as durable.
    pub fn store_meta(&mut self, meta: PersistentMeta) -> Result<(), GroupError> {
        self.flush()?;
        self.log.sync()?;
        let commit_point = self.delivered.min(self.log.durable_through().0);
        let stored = Meta {
            view: ViewNumber(meta.view.0),
            incarnation: meta.incarnation.0,
            commit_point: StoreSeqno(commit_point),
            extra: meta.last_normal_view.0.to_le_bytes().to_vec(),
        };
        self.meta.store(&stored)?;
        Ok(())
    }

    /// Stores the meta with `incarnation`, keeping the rest: a restarted member that
    /// waits for a seed before its gcs exists still counts this start.
    pub fn store_incarnation(&mut self, incarnation: u64) -> Result<(), GroupError> {
        let stored = Meta {
            incarnation,
            ..self.meta.get().clone()
        };
        self.meta.store(&stored)?;
        Ok(())
    }

    /// Notes a delivery (for the stored commit point).
    pub fn delivered(&mut self, seqno: Seqno) {
        self.delivered = self.delivered.max(seqno.0);
    }

    /// Runs the `interval:<ms>` sync when it is due.
    pub fn sync_if_due(&mut self) -> Result<(), GroupError> {
        self.log.sync_if_due()?;
        Ok(())
    }

    /// The last seqno in the log.
    pub fn last_seqno(&self) -> u64 {
        self.log.last_seqno().0
    }
}

//! The write-set index: a lock-free, sharded, open-addressing hash table from [`KeyHash`]
//! to the [`Seqno`] of the key's last committed writer.
//!
//! It owns the table's memory, its concurrency protocol and its physical reclamation. It
//! has exactly one writer, the [`IndexWriter`] (the certifier's thread), and any number of
//! concurrent [`IndexReader`]s (sessions' early conflict checks, statistics). It must
//! never decide a verdict, never allocate after construction, and never let a reader see a
//! torn (key, seqno) pair or a seqno written for another key.
//!
//! # Layout
//!
//! ```text
//!  key hash (64 bits):  [ shard: top shard_bits ][ .......... ][ home: low slot_bits ]
//!
//!  sequences: [ seq 0 | seq 1 | ... ]       one AtomicU64 per shard, each on its own
//!                                           cache line (even = stable, odd = changing)
//!  slots:     shard 0                              shard 1
//!             +-------+-------+-------+-----+      +-------+-------+-----
//!             | key   | key   | key=0 | ... |      | key   | key=0 | ...
//!             | seqno | seqno | (empty)     |      | seqno |       |
//!             +-------+-------+-------+-----+      +-------+-------+-----
//!             each slot = two AtomicU64 (16 bytes, four per cache line)
//! ```
//!
//! Collisions are resolved by linear probing inside the shard, wrapping at its end. Key 0
//! marks an empty slot, so the hash 0 is stored as [`ZERO_KEY_ALIAS`] (the two hashes are
//! one key for certification, like any hash collision: a spurious conflict at worst).
//!
//! # Logical state versus physical state
//!
//! An entry whose seqno is `<= gc_seqno` is *dead*: lookups report it absent and inserts
//! may overwrite it. Physical removal is lazy ([`IndexWriter::reclaim_step`]): members
//! reclaim at different moments, so every decision that reaches a verdict uses only the
//! logical state. The full decision in particular ([`IndexWriter::ensure_room`]) compares
//! the shard's *live* entries with its limit: the physical count of held entries is an
//! upper bound of it, and when that bound is not enough the shard is swept first, making
//! the two equal. Sweeping one shard is bounded by the shard's size; the whole table is
//! never swept at once.
//!
//! # Memory
//!
//! The table is allocated once, at construction, and never grows: a full shard is a
//! typed error ([`ShardFull`]). Construction touches every page (so the certifier never
//! page-faults on its hot path) and, on Linux, asks for transparent huge pages: lookups
//! in a large index are random, and with 4 KiB pages nearly each one would also miss
//! the TLB (measured: about 1.4x more certified keys per second at 10^7 entries). The
//! certifier hides the remaining cache misses by prefetching the slots of the next
//! transactions of a batch ([`IndexWriter::prefetch`]), and writes a key it has just
//! looked up without probing again ([`IndexWriter::locate`], [`IndexWriter::set_located`]).
//!
//! # Concurrency protocol
//!
//! Removal uses backward shift (no tombstones): the entries after a removed one in its
//! probe cluster move back to keep every cluster contiguous. A reader walking that
//! cluster at the same moment could pass the hole before an entry moved into it and then
//! stop at the slot the entry left: it would miss a live key. So every change that moves,
//! places or clears a key is a *shard change* under the shard's sequence counter (a
//! seqlock):
//!
//! ```text
//!  writer (shard change)                     reader (lookup of key k)
//!  v = seq.load()                            loop:
//!  seq.store(v + 1)        // odd              v1 = seq.load(Acquire); odd => wait, retry
//!  slot.seqno.store(.., Release)               walk the probe, every load Acquire,
//!  slot.key.store(.., Release)                   until key == k or key == empty
//!  ...more slots...                            v2 = seq.load(Relaxed)
//!  seq.store(v + 2, Release)  // even          v1 == v2 => the pair and the miss are true
//! ```
//!
//! Why it is enough: if a reader loads any value stored during a change, its Acquire load
//! synchronizes with that Release store, so the odd sequence store (sequenced before it)
//! happens before the reader's second sequence load, which then differs from `v1` (an
//! even value read before the change began). If a reader loads nothing from a change, it
//! saw the shard as of `v1`. Either way an accepted result is a consistent view.
//!
//! One write skips the sequence: raising the seqno of a slot whose key stays the same
//! (a key written again). A reader that matches the slot's key and reads either seqno sees
//! a true pair; and if the slot's key changed before (a reuse), that change was a shard
//! change sequenced before the raise, so a reader that reads the raised seqno with Acquire
//! also sees the changed sequence. The loom model in `engine/tests/index_loom.rs` checks
//! these cases.
//!
//! A reader loads `gc_seqno` once per lookup. If it moves during the lookup the reader
//! may report an entry that has just died; an early check that sees such an entry after
//! its snapshot has a snapshot older than the new `gc_seqno`, so the transaction aborts
//! at certification anyway (snapshot too old): the early check stays exact.

use std::sync::Arc;

use thiserror::Error;
use tutti_storage::Seqno;

use super::constants::{
    INDEX_SLOT_BITS_MAX, LIVE_LOAD_DENOMINATOR, LIVE_LOAD_NUMERATOR, SHARD_BITS_MAX,
    SHARD_SLOT_BITS_DEFAULT, SHARD_SLOT_BITS_MAX, SHARD_SLOT_BITS_MIN,
};
use super::request::KeyHash;
use super::sync::{spin_wait, AtomicU64, Ordering};

/// The stored key of an empty slot.
const EMPTY_KEY: u64 = 0;
/// Where the key hash 0 is stored, since 0 marks an empty slot.
pub const ZERO_KEY_ALIAS: u64 = u64::MAX;
/// The smallest page size of the platforms tutti runs on; touching one slot this far
/// apart touches every page of the table.
const PAGE_BYTES: usize = 4096;

/// The index's geometry: how many shards, and how many slots each.
///
/// Verdicts depend on it (a full shard aborts a transaction), so every member of a group
/// must use the same geometry; the certifier state carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexConfig {
    /// log2 of the number of shards.
    pub shard_bits: u32,
    /// log2 of the number of slots in each shard.
    pub shard_slot_bits: u32,
}

/// Why an [`IndexConfig`] is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IndexConfigError {
    /// Too many shards.
    #[error("index shard_bits {shard_bits} is over the maximum {max}: use fewer shards")]
    ShardBits {
        /// The value asked for.
        shard_bits: u32,
        /// The limit, `SHARD_BITS_MAX`.
        max: u32,
    },
    /// Shards too small or too large.
    #[error(
        "index shard_slot_bits {shard_slot_bits} is outside {min}..={max}: choose a shard size in range"
    )]
    ShardSlotBits {
        /// The value asked for.
        shard_slot_bits: u32,
        /// The limit, `SHARD_SLOT_BITS_MIN`.
        min: u32,
        /// The limit, `SHARD_SLOT_BITS_MAX`.
        max: u32,
    },
    /// The whole table would be too large.
    #[error("index of 2^{total_bits} slots is over the maximum 2^{max}: lower the capacity")]
    TooLarge {
        /// `shard_bits + shard_slot_bits`.
        total_bits: u32,
        /// The limit, `INDEX_SLOT_BITS_MAX`.
        max: u32,
    },
}

impl IndexConfig {
    /// A geometry for about `live_entries` live entries: default-sized shards, enough of
    /// them that the average shard is at most 5/8 full, far below the live limit (7/8),
    /// so that the uneven spread of hashes over shards does not fill one early.
    #[must_use]
    pub fn for_live_entries(live_entries: u64) -> IndexConfig {
        let mut shard_slot_bits = SHARD_SLOT_BITS_DEFAULT;
        let slots_needed = live_entries.saturating_mul(8).div_ceil(5).max(1);
        let mut shards = slots_needed
            .div_ceil(1 << shard_slot_bits)
            .next_power_of_two();
        while shards > 1 << SHARD_BITS_MAX && shard_slot_bits < SHARD_SLOT_BITS_MAX {
            shard_slot_bits += 1;
            shards = shards.div_ceil(2);
        }
        IndexConfig {
            shard_bits: shards.trailing_zeros().min(SHARD_BITS_MAX),
            shard_slot_bits,
        }
    }

    /// Checks the geometry against the named limits.
    pub fn validate(&self) -> Result<(), IndexConfigError> {
        if self.shard_bits > SHARD_BITS_MAX {
            return Err(IndexConfigError::ShardBits {
                shard_bits: self.shard_bits,
                max: SHARD_BITS_MAX,
            });
        }
        if !(SHARD_SLOT_BITS_MIN..=SHARD_SLOT_BITS_MAX).contains(&self.shard_slot_bits) {
            return Err(IndexConfigError::ShardSlotBits {
                shard_slot_bits: self.shard_slot_bits,
                min: SHARD_SLOT_BITS_MIN,
                max: SHARD_SLOT_BITS_MAX,
            });
        }
        let total_bits = self.shard_bits + self.shard_slot_bits;
        if total_bits > INDEX_SLOT_BITS_MAX {
            return Err(IndexConfigError::TooLarge {
                total_bits,
                max: INDEX_SLOT_BITS_MAX,
            });
        }
        Ok(())
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        1 << self.shard_bits
    }

    /// The number of slots in one shard.
    pub fn shard_slots(&self) -> usize {
        1 << self.shard_slot_bits
    }

    /// The most live entries one shard accepts.
    pub fn shard_live_max(&self) -> usize {
        self.shard_slots() * LIVE_LOAD_NUMERATOR / LIVE_LOAD_DENOMINATOR
    }

    /// The most live entries the whole index accepts (if hashes spread perfectly).
    pub fn live_max(&self) -> u64 {
        (self.shard_count() * self.shard_live_max()) as u64
    }

    /// The shard that holds `key`: the top `shard_bits` of its stored hash.
    pub fn shard_of(&self, key: KeyHash) -> usize {
        shard_of_stored(stored_key(key), self.shard_bits)
    }
}

/// A shard has no room for the new live entries a transaction would add.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("index shard {shard} holds {live} live entries of at most {live_max}: raise the index capacity or advance gc")]
pub struct ShardFull {
    /// The shard.
    pub shard: u32,
    /// Its live entries, exactly (after a sweep of its dead ones).
    pub live: u32,
    /// The shard's limit.
    pub live_max: u32,
}

fn stored_key(key: KeyHash) -> u64 {
    if key.0 == EMPTY_KEY {
        ZERO_KEY_ALIAS
    } else {
        key.0
    }
}

fn shard_of_stored(stored: u64, shard_bits: u32) -> usize {
    if shard_bits == 0 {
        0
    } else {
        (stored >> (64 - shard_bits)) as usize
    }
}

/// One slot: a key and its last writer, each in its own atomic (see the module doc for
/// how they are published together).
struct Slot {
    key: AtomicU64,
    seqno: AtomicU64,
}

/// A shard's sequence counter, alone on its cache line so that readers of one shard do
/// not slow the writer of its neighbour.
#[repr(align(64))]
struct ShardSequence {
    value: AtomicU64,
}

/// The memory shared by the writer and the readers.
struct Table {
    config: IndexConfig,
    slot_mask: usize,
    slots: Box<[Slot]>,
    sequences: Box<[ShardSequence]>,
    /// The writer's gc seqno, published for readers: entries at or below it are dead.
    gc_seqno: AtomicU64,
}

impl Table {
    fn new(config: IndexConfig) -> Table {
        let total = config.shard_count() * config.shard_slots();
        let mut slots = Vec::with_capacity(total);
        advise_huge_pages(&slots);
        slots.resize_with(total, || Slot {
            key: AtomicU64::new(EMPTY_KEY),
            seqno: AtomicU64::new(0),
        });
        let sequences = (0..config.shard_count())
            .map(|_| ShardSequence {
                value: AtomicU64::new(0),
            })
            .collect();
        let slots: Box<[Slot]> = slots.into_boxed_slice();
        // The allocator may hand out untouched zero pages (calloc-like): write one slot
        // per page now, so the certifier never takes a page fault on its hot path.
        for slot in slots
            .iter()
            .step_by(PAGE_BYTES / std::mem::size_of::<Slot>())
        {
            slot.key.store(EMPTY_KEY, Ordering::Relaxed);
        }
        Table {
            config,
            slot_mask: config.shard_slots() - 1,
            slots,
            sequences,
            gc_seqno: AtomicU64::new(0),
        }
    }

    fn slot(&self, shard: usize, position: usize) -> &Slot {
        &self.slots[(shard << self.config.shard_slot_bits) + position]
    }

    fn home(&self, stored: u64) -> usize {
        stored as usize & self.slot_mask
    }
}

/// Where a key is, or where it would go, as the writer found it.
enum Probe {
    /// The key's slot, and the seqno it holds (live or dead).
    Found { position: usize, seqno: u64 },
    /// The key is not held: it would go to the first dead slot on its probe, if any,
    /// else to the empty slot that ended the probe.
    Absent {
        first_dead: Option<usize>,
        empty: usize,
    },
}

/// Where the writer found a key: enough to write it again without a second probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located {
    /// The key's slot (position in the whole table), if the index holds it, live or dead.
    slot: Option<usize>,
    /// The key's live last writer.
    pub live: Option<Seqno>,
}

/// The single writer of the index. Not `Clone`: there is exactly one per index.
pub struct IndexWriter {
    table: Arc<Table>,
    /// Held entries (live or dead) per shard; only the writer changes slots, so it counts.
    held: Vec<u32>,
    held_total: u64,
    /// The writer's copy of the gc seqno.
    gc_seqno: u64,
    /// The next slot (global position) the incremental reclamation examines.
    reclaim_cursor: usize,
}

impl IndexWriter {
    /// An empty index with the given geometry.
    pub fn new(config: IndexConfig) -> Result<IndexWriter, IndexConfigError> {
        config.validate()?;
        Ok(IndexWriter {
            table: Arc::new(Table::new(config)),
            held: vec![0; config.shard_count()],
            held_total: 0,
            gc_seqno: 0,
            reclaim_cursor: 0,
        })
    }

    /// The index's geometry.
    pub fn config(&self) -> IndexConfig {
        self.table.config
    }

    /// A reader handle for other threads.
    pub fn reader(&self) -> IndexReader {
        IndexReader {
            table: Arc::clone(&self.table),
        }
    }

    /// The gc seqno the index treats as the limit of dead entries.
    pub fn gc_seqno(&self) -> Seqno {
        Seqno(self.gc_seqno)
    }

    /// Entries physically held, live or dead: an upper bound of the live entries, equal to
    /// it once reclamation has caught up.
    pub fn entries_held(&self) -> u64 {
        self.held_total
    }

    /// The last committed writer of `key`, if it is live (later than the gc seqno).
    pub fn last_writer(&self, key: KeyHash) -> Option<Seqno> {
        match self.probe(stored_key(key)) {
            Probe::Found { seqno, .. } if seqno > self.gc_seqno => Some(Seqno(seqno)),
            _ => None,
        }
    }

    /// Asks the CPU to start loading `key`'s home slot, so that a lookup issued a little
    /// later finds it in cache. The certifier calls it for the keys of the next
    /// transactions while it decides the current one: lookups in a large index are cache
    /// misses, and this overlaps them. It changes nothing the program can observe.
    #[inline]
    pub fn prefetch(&self, key: KeyHash) {
        let stored = stored_key(key);
        let shard = shard_of_stored(stored, self.table.config.shard_bits);
        prefetch_line(std::ptr::from_ref(
            self.table.slot(shard, self.table.home(stored)),
        ));
    }

    /// Finds `key`: its live last writer, and its slot for [`IndexWriter::set_located`].
    pub fn locate(&self, key: KeyHash) -> Located {
        let stored = stored_key(key);
        match self.probe(stored) {
            Probe::Found { position, seqno } => Located {
                slot: Some(
                    (shard_of_stored(stored, self.table.config.shard_bits)
                        << self.table.config.shard_slot_bits)
                        + position,
                ),
                live: (seqno > self.gc_seqno).then_some(Seqno(seqno)),
            },
            Probe::Absent { .. } => Located {
                slot: None,
                live: None,
            },
        }
    }

    /// [`IndexWriter::set`], reusing what [`IndexWriter::locate`] found for `key`. If the
    /// slot no longer holds the key (a removal moved it, or an insert reused its dead
    /// slot since), it probes again: the result is always that of `set`.
    pub fn set_located(&mut self, key: KeyHash, located: Located, seqno: Seqno) {
        if let Some(global) = located.slot {
            let slot = &self.table.slots[global];
            if slot.key.load(Ordering::Relaxed) == stored_key(key) {
                assert!(seqno.0 > self.gc_seqno, "a new entry must be live");
                assert!(
                    seqno.0 >= slot.seqno.load(Ordering::Relaxed),
                    "a key's last writer only moves forward"
                );
                // Same key, later seqno: published without a shard change (module doc).
                slot.seqno.store(seqno.0, Ordering::Release);
                return;
            }
        }
        self.set(key, seqno);
    }

    /// Raises the gc seqno: every entry at or below it becomes dead at once.
    pub fn set_gc_seqno(&mut self, gc_seqno: Seqno) {
        assert!(gc_seqno.0 >= self.gc_seqno, "gc seqno must never go back");
        self.gc_seqno = gc_seqno.0;
        self.table.gc_seqno.store(gc_seqno.0, Ordering::Release);
    }

    /// Makes sure `shard` can take `new_entries` more live entries, deciding on the live
    /// count only (see the module doc), so every member decides the same.
    pub fn ensure_room(&mut self, shard: usize, new_entries: usize) -> Result<(), ShardFull> {
        let live_max = self.table.config.shard_live_max();
        // Held entries bound the live ones from above: enough room by that count is
        // enough room by the exact one.
        if self.held[shard] as usize + new_entries <= live_max {
            return Ok(());
        }
        self.sweep_shard(shard);
        // After the sweep every held entry is live: the count is exact.
        let live = self.held[shard] as usize;
        if live + new_entries <= live_max {
            Ok(())
        } else {
            Err(ShardFull {
                shard: shard as u32,
                live: live as u32,
                live_max: live_max as u32,
            })
        }
    }

    /// Records `seqno` as the last writer of `key`. The caller has made room with
    /// [`IndexWriter::ensure_room`] if the key was not live.
    pub fn set(&mut self, key: KeyHash, seqno: Seqno) {
        assert!(seqno.0 > self.gc_seqno, "a new entry must be live");
        let stored = stored_key(key);
        let shard = shard_of_stored(stored, self.table.config.shard_bits);
        match self.probe(stored) {
            Probe::Found {
                position,
                seqno: old,
            } => {
                // Equal when a write set names a key twice.
                assert!(seqno.0 >= old, "a key's last writer only moves forward");
                // Same key, later seqno: published without a shard change (module doc).
                let slot = self.table.slot(shard, position);
                slot.seqno.store(seqno.0, Ordering::Release);
            }
            Probe::Absent { first_dead, empty } => {
                let position = first_dead.unwrap_or(empty);
                if first_dead.is_none() {
                    self.held[shard] += 1;
                    self.held_total += 1;
                }
                assert!(
                    (self.held[shard] as usize) < self.table.config.shard_slots(),
                    "a shard always keeps an empty slot: ensure_room was not called"
                );
                let odd = self.begin_change(shard);
                let slot = self.table.slot(shard, position);
                slot.seqno.store(seqno.0, Ordering::Release);
                slot.key.store(stored, Ordering::Release);
                self.end_change(shard, odd);
            }
        }
    }

    /// Physically removes dead entries, examining at most `max_slots` slots from where the
    /// previous step stopped. Returns how many entries it removed. Bounded work: callers
    /// run it between batches, never as one stop-the-world sweep.
    pub fn reclaim_step(&mut self, max_slots: usize) -> usize {
        let total = self.table.slots.len();
        let slot_bits = self.table.config.shard_slot_bits;
        let mut removed = 0;
        for _ in 0..max_slots {
            let global = self.reclaim_cursor;
            let (shard, position) = (global >> slot_bits, global & self.table.slot_mask);
            let slot = self.table.slot(shard, position);
            let key = slot.key.load(Ordering::Relaxed);
            if key != EMPTY_KEY && slot.seqno.load(Ordering::Relaxed) <= self.gc_seqno {
                // The shift may bring another dead entry here: stay and look again.
                self.remove_at(shard, position);
                removed += 1;
            } else {
                self.reclaim_cursor = (global + 1) % total;
            }
        }
        removed
    }

    /// Calls `visit` with every live entry, in slot order.
    pub fn for_each_live(&self, mut visit: impl FnMut(KeyHash, Seqno)) {
        for slot in &*self.table.slots {
            let key = slot.key.load(Ordering::Relaxed);
            let seqno = slot.seqno.load(Ordering::Relaxed);
            if key != EMPTY_KEY && seqno > self.gc_seqno {
                visit(KeyHash(key), Seqno(seqno));
            }
        }
    }

    /// Finds `stored` on its probe, with plain loads: the writer is the only thread that
    /// changes slots, so it always sees a stable table.
    fn probe(&self, stored: u64) -> Probe {
        let table = &*self.table;
        let shard = shard_of_stored(stored, table.config.shard_bits);
        let mut position = table.home(stored);
        let mut first_dead = None;
        for _ in 0..table.config.shard_slots() {
            let slot = table.slot(shard, position);
            let key = slot.key.load(Ordering::Relaxed);
            if key == stored {
                let seqno = slot.seqno.load(Ordering::Relaxed);
                return Probe::Found { position, seqno };
            }
            if key == EMPTY_KEY {
                return Probe::Absent {
                    first_dead,
                    empty: position,
                };
            }
            if first_dead.is_none() && slot.seqno.load(Ordering::Relaxed) <= self.gc_seqno {
                first_dead = Some(position);
            }
            position = (position + 1) & table.slot_mask;
        }
        unreachable!("shard {shard} has no empty slot: the live limit keeps one free");
    }

    /// Removes the entry at `hole` by backward shift: each later entry of the cluster that
    /// may live at the hole (its home is not after the hole) moves into it, until an empty
    /// slot ends the cluster. One shard change, so no reader misses a moved entry.
    fn remove_at(&mut self, shard: usize, hole: usize) {
        let table = &*self.table;
        let mask = table.slot_mask;
        let odd = self.begin_change(shard);
        let mut hole = hole;
        let mut next = hole;
        for _ in 0..table.config.shard_slots() {
            next = (next + 1) & mask;
            let from = table.slot(shard, next);
            let key = from.key.load(Ordering::Relaxed);
            if key == EMPTY_KEY {
                break;
            }
            // The entry may move back to the hole if the hole is no further from the
            // entry than its home is: the probe from its home still passes the hole.
            let key_home = table.home(key);
            if (next.wrapping_sub(key_home) & mask) >= (next.wrapping_sub(hole) & mask) {
                let to = table.slot(shard, hole);
                to.seqno
                    .store(from.seqno.load(Ordering::Relaxed), Ordering::Release);
                to.key.store(key, Ordering::Release);
                hole = next;
            }
        }
        let emptied = table.slot(shard, hole);
        emptied.key.store(EMPTY_KEY, Ordering::Release);
        emptied.seqno.store(0, Ordering::Release);
        self.end_change(shard, odd);
        self.held[shard] -= 1;
        self.held_total -= 1;
    }

    /// Removes every dead entry of one shard. The scan starts after an empty slot, so no
    /// cluster wraps past its start and an entry shifted back lands on the slot being
    /// examined, never on one already passed: one pass removes them all.
    fn sweep_shard(&mut self, shard: usize) {
        let slots = self.table.config.shard_slots();
        let mask = self.table.slot_mask;
        let start = (0..slots)
            .find(|&p| self.table.slot(shard, p).key.load(Ordering::Relaxed) == EMPTY_KEY)
            .expect("a shard always keeps an empty slot");
        for offset in 1..=slots {
            let position = (start + offset) & mask;
            loop {
                let slot = self.table.slot(shard, position);
                let key = slot.key.load(Ordering::Relaxed);
                if key == EMPTY_KEY || slot.seqno.load(Ordering::Relaxed) > self.gc_seqno {
                    break;
                }
                self.remove_at(shard, position);
            }
        }
    }

    fn begin_change(&self, shard: usize) -> u64 {
        let sequence = &self.table.sequences[shard].value;
        let even = sequence.load(Ordering::Relaxed);
        assert!(even % 2 == 0, "shard {shard} change already in progress");
        // Relaxed is enough: the slot stores that follow are Release, so a reader that
        // sees any of them also sees this odd value (module doc).
        sequence.store(even + 1, Ordering::Relaxed);
        even + 1
    }

    fn end_change(&self, shard: usize, odd: u64) {
        self.table.sequences[shard]
            .value
            .store(odd + 1, Ordering::Release);
    }
}

/// Asks the kernel to back the table with transparent huge pages (when it is allowed
/// only on request, as `madvise` mode is). A large index is read at random: with 4 KiB
/// pages nearly every lookup also misses the TLB; 2 MiB pages make the page walks rare.
/// Called before the memory is first touched, so the first touches fault huge pages in.
fn advise_huge_pages(slots: &Vec<Slot>) {
    #[cfg(all(target_os = "linux", not(loom)))]
    {
        const HUGE_PAGE_BYTES: usize = 2 << 20;
        let start = slots.as_ptr() as usize;
        let end = start + slots.capacity() * std::mem::size_of::<Slot>();
        let first = start.next_multiple_of(HUGE_PAGE_BYTES);
        let last = end / HUGE_PAGE_BYTES * HUGE_PAGE_BYTES;
        if last > first {
            // SAFETY: madvise only gives advice about a range of our own allocation (the
            // whole huge pages inside the vector's capacity); MADV_HUGEPAGE changes no
            // content. A failure (a kernel without THP) leaves ordinary pages: ignored.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(all(target_os = "linux", not(loom))))]
    let _ = slots;
}

/// Hints the CPU to bring the cache line at `address` into its caches.
#[inline]
fn prefetch_line<T>(address: *const T) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    // SAFETY: a prefetch is only a hint: it never faults, whatever the address, and it
    // neither reads nor writes anything the program can observe. The address is a
    // slot of the live table anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = address;
}

/// A read-only handle on the index, for any thread. Lookups never block the writer and
/// never return a torn pair; they retry while the writer changes the key's shard.
#[derive(Clone)]
pub struct IndexReader {
    table: Arc<Table>,
}

impl IndexReader {
    /// The last committed writer of `key`, if it is live as of this lookup.
    pub fn last_writer(&self, key: KeyHash) -> Option<Seqno> {
        let table = &*self.table;
        let stored = stored_key(key);
        let shard = shard_of_stored(stored, table.config.shard_bits);
        let sequence = &table.sequences[shard].value;
        let gc_seqno = table.gc_seqno.load(Ordering::Acquire);
        loop {
            let before = sequence.load(Ordering::Acquire);
            if before % 2 == 1 {
                spin_wait();
                continue;
            }
            let found = Self::walk(table, shard, stored);
            if sequence.load(Ordering::Relaxed) == before {
                return found.filter(|&seqno| seqno > gc_seqno).map(Seqno);
            }
            spin_wait();
        }
    }

    /// The gc seqno the writer last published.
    pub fn gc_seqno(&self) -> Seqno {
        Seqno(self.table.gc_seqno.load(Ordering::Acquire))
    }

    /// One probe walk; its result counts only if the shard did not change meanwhile.
    fn walk(table: &Table, shard: usize, stored: u64) -> Option<u64> {
        let mut position = table.home(stored);
        // A walk that overlaps changes may see a full cluster; the bound ends it and the
        // sequence check discards the result.
        for _ in 0..table.config.shard_slots() {
            let slot = table.slot(shard, position);
            let key = slot.key.load(Ordering::Acquire);
            if key == stored {
                return Some(slot.seqno.load(Ordering::Acquire));
            }
            if key == EMPTY_KEY {
                return None;
            }
            position = (position + 1) & table.slot_mask;
        }
        None
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

//! A member's own transactions between execution and apply: the numbering of its
//! proposals, the local overlay of its in-flight writes, and the execution of
//! transactions against the latest local state (DESIGN.md section 5, "Local conflicts").
//!
//! ```text
//!  execute(body) ──► body reads: overlay (own in-flight writer) else store @ watermark
//!        │                         └─ a read from the overlay makes the writer a local dep
//!        ▼
//!  TxnMessage{number, snapshot, checked, writes, local_deps} ──► proposed by the caller
//!        │  writes enter the overlay and the in-flight table
//!        ▼
//!  on_verdict(number, seqno, committed)   aborted: leaves the overlay now
//!  on_applied(watermark)                  committed and applied: leaves the overlay
//! ```
//!
//! A command-style transaction (a closure run at commit time) that reads a key written
//! by a local transaction still in flight reads that write and is proposed chained to
//! it, so local conflicts never abort: one member's proposals keep their order, so the
//! dependency is certified first, and the certifier aborts the chained transaction
//! exactly when its dependency aborted. A write that only overwrites an in-flight write
//! needs no dependency: the later proposal is ordered later and wins either way. A
//! command that only reads is never certified, so it must not return an in-flight value
//! (a dirty read): it runs again on committed state.
//!
//! Why a key read from the overlay is checked at the snapshot: every in-flight writer
//! left in the overlay is ordered after the snapshot (applied writers are pruned first,
//! under the same lock), so a remote write between the snapshot and the dependency
//! either aborts the dependency (which aborts this one) or is overwritten by it, and a
//! remote write after the dependency is a live writer later than the snapshot that is
//! not a dependency: a conflict. This module is sans-IO: no clock, no threads, no IO;
//! the member wraps it in a lock and the simulator drives it directly.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use thiserror::Error;
use tutti_net::gcs::MemberId;
use tutti_storage::store::{Store, Value};
use tutti_storage::Seqno;

use crate::certifier::{CheckedKey, Isolation, KeyHash};
use crate::txn::{own_write, record_write, TxnId, TxnMessage, Write};

/// Too many of this member's transactions are in flight.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("{0} transactions of this member are in flight (in_flight_max); retry when some commit")]
pub struct TooManyInFlight(pub usize);

/// The latest in-flight local writer of one key.
#[derive(Clone, Debug)]
struct OverlayEntry {
    number: u64,
    value: Option<Value>,
}

/// One proposed, not yet applied (or aborted) local transaction.
#[derive(Clone, Debug)]
struct InFlight {
    /// The keys it wrote, to clean the overlay when it leaves.
    keys: Vec<Box<[u8]>>,
    /// Its seqno, once delivered and committed.
    seqno: Option<Seqno>,
}

/// One member's local transaction state.
pub struct LocalTxns {
    origin: MemberId,
    incarnation: u64,
    next_number: u64,
    /// Whether command-style transactions read the overlay (and chain). Off only to
    /// measure what chaining is worth: every local conflict then aborts.
    chaining: bool,
    overlay: HashMap<Box<[u8]>, OverlayEntry>,
    in_flight: BTreeMap<u64, InFlight>,
    in_flight_max: usize,
}

/// A command-style transaction while its body runs: reads see the latest local state.
pub struct CommandTxn<'a> {
    store: &'a Store,
    overlay: Option<&'a HashMap<Box<[u8]>, OverlayEntry>>,
    snapshot: Seqno,
    checked: Vec<CheckedKey>,
    writes: Vec<Write>,
    deps: BTreeSet<u64>,
}

impl<'a> CommandTxn<'a> {
    fn new(
        store: &'a Store,
        overlay: Option<&'a HashMap<Box<[u8]>, OverlayEntry>>,
        snapshot: Seqno,
    ) -> CommandTxn<'a> {
        CommandTxn {
            store,
            overlay,
            snapshot,
            checked: Vec::new(),
            writes: Vec::new(),
            deps: BTreeSet::new(),
        }
    }

    /// The value of `key` as this transaction sees it: its own write, else the latest
    /// local in-flight write, else the store at the snapshot. The key is checked at
    /// certification.
    pub fn get(&mut self, key: &[u8]) -> Option<Value> {
        if let Some(write) = own_write(&self.writes, key) {
            return write.value.clone();
        }
        self.check_read(key);
        if let Some(entry) = self.overlay.and_then(|overlay| overlay.get(key)) {
            self.deps.insert(entry.number);
            return entry.value.clone();
        }
        self.store.get(key, self.snapshot)
    }

    /// Adds `key` to the checked set, observed at the snapshot.
    fn check_read(&mut self, key: &[u8]) {
        let hash = KeyHash::of(key);
        if !self.checked.iter().any(|checked| checked.key == hash) {
            self.checked.push(CheckedKey {
                key: hash,
                observed_at: self.snapshot,
            });
        }
    }

    /// The value of `key` as committed: the transaction's own write, else the store at
    /// the snapshot, never a local in-flight write (which may still abort). The key is
    /// checked at certification, and no dependency is taken. For reads that must not
    /// see uncommitted data (a `WATCH`ed key, whose value the client writes back later).
    pub fn get_committed(&mut self, key: &[u8]) -> Option<Value> {
        if let Some(write) = own_write(&self.writes, key) {
            return write.value.clone();
        }
        self.check_read(key);
        self.store.get(key, self.snapshot)
    }

    /// The value of `key` as [`get`](Self::get) would return it, without checking the
    /// key at certification and without a dependency: for replies that describe a blind
    /// write (how many keys a `DEL` removed), never for a value that is written back.
    pub fn peek(&self, key: &[u8]) -> Option<Value> {
        if let Some(write) = own_write(&self.writes, key) {
            return write.value.clone();
        }
        if let Some(entry) = self.overlay.and_then(|overlay| overlay.get(key)) {
            return entry.value.clone();
        }
        self.store.get(key, self.snapshot)
    }

    /// Writes `value` at `key` (a blind write is never checked).
    pub fn put(&mut self, key: &[u8], value: Value) {
        record_write(&mut self.writes, key, Some(value));
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: &[u8]) {
        record_write(&mut self.writes, key, None);
    }

    /// The snapshot the transaction reads the store at.
    pub fn snapshot(&self) -> Seqno {
        self.snapshot
    }

    /// Whether one of this member's transactions that writes `key` is in flight
    /// (proposed, not yet applied or aborted). A `WATCH`ed key with such a writer must
    /// not be read through the overlay: the writer may have started after the `WATCH`,
    /// and reading it would excuse it as a dependency.
    pub fn has_in_flight_writer(&self, key: &[u8]) -> bool {
        self.overlay
            .is_some_and(|overlay| overlay.contains_key(key))
    }

    /// Adds a key observed earlier (a `WATCH`) to the checked set.
    pub fn check(&mut self, key: &[u8], observed_at: Seqno) {
        let hash = KeyHash::of(key);
        match self.checked.iter_mut().find(|checked| checked.key == hash) {
            Some(checked) => checked.observed_at = checked.observed_at.min(observed_at),
            None => self.checked.push(CheckedKey {
                key: hash,
                observed_at,
            }),
        }
    }
}

impl LocalTxns {
    /// State for `origin` in `incarnation`, with chaining on.
    pub fn new(origin: MemberId, incarnation: u64, in_flight_max: usize) -> LocalTxns {
        LocalTxns {
            origin,
            incarnation,
            next_number: 1,
            chaining: true,
            overlay: HashMap::new(),
            in_flight: BTreeMap::new(),
            in_flight_max: in_flight_max.max(1),
        }
    }

    /// Switches chaining off (or on again). Off, a command reads only the store and a
    /// local in-flight writer of a key it reads makes it abort at certification: the
    /// baseline that shows what chaining is worth. Not for production use.
    pub fn set_chaining(&mut self, chaining: bool) {
        self.chaining = chaining;
    }

    /// Transactions proposed and not yet applied or aborted.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Runs a command-style transaction: `body` against the store at `watermark` under
    /// the overlay. Returns the body's result and the transaction to propose (`None` when
    /// it wrote nothing: read-only transactions never touch the group). A returned
    /// transaction is already in the overlay: the caller must propose it, or call
    /// [`withdraw`](Self::withdraw) if it cannot.
    pub fn execute<R>(
        &mut self,
        store: &Store,
        watermark: Seqno,
        mut body: impl FnMut(&mut CommandTxn<'_>) -> R,
    ) -> Result<(R, Option<TxnMessage>), TooManyInFlight> {
        self.on_applied(watermark);
        if self.in_flight.len() >= self.in_flight_max {
            return Err(TooManyInFlight(self.in_flight_max));
        }
        let mut txn = CommandTxn::new(store, self.chaining.then_some(&self.overlay), watermark);
        let mut result = body(&mut txn);
        if txn.writes.is_empty() && !txn.deps.is_empty() {
            // A read-only transaction is never certified, so it must not return a value
            // that a local in-flight transaction wrote and may still abort (a dirty
            // read): it runs again on committed state only.
            txn = CommandTxn::new(store, None, watermark);
            result = body(&mut txn);
        }
        let CommandTxn {
            snapshot,
            checked,
            writes,
            deps,
            ..
        } = txn;
        if writes.is_empty() {
            return Ok((result, None));
        }
        let message = self.register(
            snapshot,
            Isolation::Command,
            checked,
            writes,
            deps.into_iter().collect(),
        );
        Ok((result, Some(message)))
    }

    /// Registers an interactive transaction's writes for proposal: `checked` was built
    /// by its isolation level; it has no local dependencies.
    pub fn propose_interactive(
        &mut self,
        snapshot: Seqno,
        isolation: Isolation,
        checked: Vec<CheckedKey>,
        writes: Vec<Write>,
    ) -> Result<TxnMessage, TooManyInFlight> {
        if self.in_flight.len() >= self.in_flight_max {
            return Err(TooManyInFlight(self.in_flight_max));
        }
        Ok(self.register(snapshot, isolation, checked, writes, Vec::new()))
    }

    fn register(
        &mut self,
        snapshot: Seqno,
        isolation: Isolation,
        checked: Vec<CheckedKey>,
        writes: Vec<Write>,
        local_deps: Vec<u64>,
    ) -> TxnMessage {
        let number = self.next_number;
        self.next_number += 1;
        for write in &writes {
            self.overlay.insert(
                write.key.clone(),
                OverlayEntry {
                    number,
                    value: write.value.clone(),
                },
            );
        }
        self.in_flight.insert(
            number,
            InFlight {
                keys: writes.iter().map(|write| write.key.clone()).collect(),
                seqno: None,
            },
        );
        TxnMessage {
            id: TxnId {
                origin: self.origin,
                incarnation: self.incarnation,
                number,
            },
            snapshot,
            isolation,
            checked,
            writes,
            local_deps,
            after: false,
        }
    }

    /// A registered transaction was not proposed after all (the group refused it), or
    /// its outcome became unknown: it leaves the overlay. A later command that would have
    /// read it reads the store, and certification catches a late commit of it.
    pub fn withdraw(&mut self, number: u64) {
        self.remove(number);
    }

    /// A local transaction was certified at `seqno`.
    pub fn on_verdict(&mut self, number: u64, seqno: Seqno, committed: bool) {
        if committed {
            if let Some(in_flight) = self.in_flight.get_mut(&number) {
                in_flight.seqno = Some(seqno);
            }
        } else {
            self.remove(number);
        }
    }

    /// The watermark passed `watermark`: committed transactions at or below it are in
    /// the store and leave the overlay.
    pub fn on_applied(&mut self, watermark: Seqno) {
        let applied: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, in_flight)| in_flight.seqno.is_some_and(|seqno| seqno <= watermark))
            .map(|(&number, _)| number)
            .collect();
        for number in applied {
            self.remove(number);
        }
    }

    fn remove(&mut self, number: u64) {
        let Some(in_flight) = self.in_flight.remove(&number) else {
            return;
        };
        for key in in_flight.keys {
            if self
                .overlay
                .get(&key)
                .is_some_and(|entry| entry.number == number)
            {
                self.overlay.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(bytes: &[u8]) -> Value {
        Value::from(bytes)
    }

    fn incr(txn: &mut CommandTxn<'_>, key: &[u8]) -> u64 {
        let now = txn
            .get(key)
            .map_or(0, |v| std::str::from_utf8(&v).unwrap().parse().unwrap());
        txn.put(key, value((now + 1).to_string().as_bytes()));
        now + 1
    }

    #[test]
    fn a_command_reads_the_in_flight_local_write_and_chains_to_it() {
        let store = Store::new();
        let mut local = LocalTxns::new(MemberId(1), 1, 100);
        let (first, a) = local.execute(&store, Seqno(0), |t| incr(t, b"k")).unwrap();
        let (second, b) = local.execute(&store, Seqno(0), |t| incr(t, b"k")).unwrap();
        assert_eq!((first, second), (1, 2));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.local_deps, Vec::<u64>::new());
        assert_eq!(b.local_deps, vec![a.id.number]);
        assert_eq!(b.checked[0].observed_at, Seqno(0));
    }

    #[test]
    fn without_chaining_a_command_reads_the_store_only() {
        let store = Store::new();
        let mut local = LocalTxns::new(MemberId(1), 1, 100);
        local.set_chaining(false);
        local.execute(&store, Seqno(0), |t| incr(t, b"k")).unwrap();
        let (second, b) = local.execute(&store, Seqno(0), |t| incr(t, b"k")).unwrap();
        assert_eq!(second, 1);
        assert!(b.unwrap().local_deps.is_empty());
    }

    #[test]
    fn an_aborted_writer_leaves_the_overlay_and_an_applied_one_too() {
        let store = Store::new();
        let mut local = LocalTxns::new(MemberId(1), 1, 100);
        let (_, a) = local.execute(&store, Seqno(0), |t| incr(t, b"k")).unwrap();
        local.on_verdict(a.unwrap().id.number, Seqno(1), false);
        let (again, b) = local.execute(&store, Seqno(1), |t| incr(t, b"k")).unwrap();
        assert_eq!(again, 1, "the aborted write is not read");
        let b = b.unwrap();
        assert!(b.local_deps.is_empty());
        local.on_verdict(b.id.number, Seqno(2), true);
        assert_eq!(local.in_flight(), 1, "committed, not yet applied");
        store.install(b"k", Seqno(2), Some(value(b"1")));
        let (third, c) = local.execute(&store, Seqno(2), |t| incr(t, b"k")).unwrap();
        assert_eq!(third, 2);
        assert!(
            c.unwrap().local_deps.is_empty(),
            "applied writers are not deps"
        );
        assert_eq!(local.in_flight(), 1);
    }

    #[test]
    fn a_read_only_command_never_returns_an_uncommitted_local_write() {
        let store = Store::new();
        store.install(b"k", Seqno(1), Some(value(b"5")));
        let mut local = LocalTxns::new(MemberId(1), 1, 100);
        let (_, writer) = local.execute(&store, Seqno(1), |t| incr(t, b"k")).unwrap();
        assert!(writer.is_some());
        let (read, proposed) = local.execute(&store, Seqno(1), |t| t.get(b"k")).unwrap();
        assert_eq!(
            read,
            Some(value(b"5")),
            "the committed value, not the in-flight 6"
        );
        assert_eq!(proposed, None);
        let (after, chained) = local.execute(&store, Seqno(1), |t| incr(t, b"k")).unwrap();
        assert_eq!(
            after, 7,
            "a writing command still chains to the in-flight write"
        );
        assert_eq!(chained.unwrap().local_deps.len(), 1);
    }

    #[test]
    fn read_only_commands_are_not_proposed_and_the_in_flight_bound_holds() {
        let store = Store::new();
        let mut local = LocalTxns::new(MemberId(1), 1, 2);
        let (got, none) = local.execute(&store, Seqno(0), |t| t.get(b"x")).unwrap();
        assert_eq!((got, none), (None, None));
        local
            .execute(&store, Seqno(0), |t| t.put(b"a", value(b"1")))
            .unwrap();
        let ((), b) = local
            .execute(&store, Seqno(0), |t| t.put(b"b", value(b"1")))
            .unwrap();
        assert_eq!(
            local
                .execute(&store, Seqno(0), |t| t.put(b"c", value(b"1")))
                .err(),
            Some(TooManyInFlight(2))
        );
        local.withdraw(b.unwrap().id.number);
        assert!(local
            .execute(&store, Seqno(0), |t| t.put(b"c", value(b"1")))
            .is_ok());
    }

    #[test]
    fn an_in_flight_writer_is_visible_until_it_is_applied() {
        let store = Store::new();
        let mut local = LocalTxns::new(MemberId(1), 1, 100);
        let ((), a) = local
            .execute(&store, Seqno(0), |t| t.put(b"w", value(b"1")))
            .unwrap();
        let (seen, _) = local
            .execute(&store, Seqno(0), |t| {
                (
                    t.has_in_flight_writer(b"w"),
                    t.has_in_flight_writer(b"other"),
                )
            })
            .unwrap();
        assert_eq!(seen, (true, false));
        let (committed, _) = local
            .execute(&store, Seqno(0), |t| {
                let read = (t.get_committed(b"w"), t.get(b"w"));
                // A writing command: a read-only one would run again on committed state.
                t.put(b"x", value(b"0"));
                read
            })
            .unwrap();
        assert_eq!(
            committed,
            (None, Some(value(b"1"))),
            "only get reads the overlay"
        );
        local.on_verdict(a.unwrap().id.number, Seqno(1), true);
        let (after, _) = local
            .execute(&store, Seqno(1), |t| t.has_in_flight_writer(b"w"))
            .unwrap();
        assert!(!after, "applied writers leave the overlay");
    }

    #[test]
    fn a_blind_overwrite_needs_no_dependency_but_later_readers_see_it() {
        let store = Store::new();
        let mut local = LocalTxns::new(MemberId(1), 1, 100);
        local.execute(&store, Seqno(0), |t| incr(t, b"k")).unwrap();
        let ((), set) = local
            .execute(&store, Seqno(0), |t| t.put(b"k", value(b"10")))
            .unwrap();
        let set = set.unwrap();
        assert!(set.local_deps.is_empty() && set.checked.is_empty());
        let (after, c) = local.execute(&store, Seqno(0), |t| incr(t, b"k")).unwrap();
        assert_eq!(after, 11);
        assert_eq!(c.unwrap().local_deps, vec![set.id.number]);
    }
}

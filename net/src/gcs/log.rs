//! The in-memory copy of a member's log and the replicated state derived from it.
//!
//! The durable log belongs to the shell; this copy serves retransmission, view changes
//! and catch-up of joiners. It holds the whole log from seqno 1: its size grows with the
//! group's history, which is the documented bound for now (a member needs memory for
//! every entry ordered since the group was created). State transfer (DESIGN.md
//! section 10) replaces this: once snapshots exist, the prefix below every member's
//! snapshot is dropped here and a joiner that needs it gets a snapshot instead.
//!
//! Derived state, recomputed after every truncation and kept up to date on append:
//! the configuration history (every `Reconfigure` position) and the per-origin table of
//! the highest ordered proposal (VR's client table). This module must never decide
//! protocol steps; it only answers questions about the log.

use std::collections::HashMap;

use super::entry::{Entry, EntryBody};
use super::types::{Incarnation, MemberId, Seqno, ViewId};

/// Highest ordered proposal of one origin: its incarnation and counter.
pub type OriginPosition = (Incarnation, u64);

/// The log and what is derived from it.
#[derive(Debug, Default)]
pub struct Log {
    /// Entry with seqno `s` is at index `s - 1`.
    entries: Vec<Entry>,
    /// Position and member list of every configuration, in log order.
    configs: Vec<(Seqno, Vec<MemberId>)>,
    /// Highest ordered (incarnation, counter) per origin.
    origins: HashMap<MemberId, OriginPosition>,
}

impl Log {
    /// Builds a log from restored entries, keeping the longest prefix that is
    /// contiguous from seqno 1 with non-decreasing views.
    pub fn from_entries(entries: Vec<Entry>) -> Log {
        let mut log = Log::default();
        for entry in entries {
            let expected = log.last_seqno().next();
            if entry.seqno != expected || entry.view < log.last_view() {
                break;
            }
            log.append(entry);
        }
        log
    }

    /// The last seqno (0 when empty).
    pub fn last_seqno(&self) -> Seqno {
        Seqno(self.entries.len() as u64)
    }

    /// The view of the last entry (0 when empty).
    pub fn last_view(&self) -> ViewId {
        self.entries.last().map_or(ViewId(0), |entry| entry.view)
    }

    /// The entry at `seqno`.
    pub fn get(&self, seqno: Seqno) -> Option<&Entry> {
        let index = usize::try_from(seqno.0).ok()?.checked_sub(1)?;
        self.entries.get(index)
    }

    /// The view of the entry at `seqno`; `Some(0)` for seqno 0.
    pub fn view_at(&self, seqno: Seqno) -> Option<ViewId> {
        if seqno == Seqno::ZERO {
            return Some(ViewId(0));
        }
        self.get(seqno).map(|entry| entry.view)
    }

    /// Entries from `from` on, at most `entries_max` of them and at most `bytes_max`
    /// bytes (always at least one if any exists).
    pub fn slice(&self, from: Seqno, entries_max: usize, bytes_max: usize) -> Vec<Entry> {
        let Some(start) = usize::try_from(from.0).ok().and_then(|s| s.checked_sub(1)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut bytes = 0;
        for entry in self.entries.iter().skip(start).take(entries_max) {
            let size = entry.body.size_bytes();
            if !out.is_empty() && bytes + size > bytes_max {
                break;
            }
            bytes += size;
            out.push(entry.clone());
        }
        out
    }

    /// Appends the next entry.
    pub fn append(&mut self, entry: Entry) {
        assert_eq!(
            entry.seqno,
            self.last_seqno().next(),
            "log append must be contiguous"
        );
        assert!(
            entry.view >= self.last_view(),
            "entry views never decrease along a log"
        );
        self.observe(&entry);
        self.entries.push(entry);
    }

    /// Removes every entry after `after` and recomputes derived state.
    pub fn truncate_after(&mut self, after: Seqno) {
        let keep = usize::try_from(after.0)
            .unwrap_or(usize::MAX)
            .min(self.entries.len());
        self.entries.truncate(keep);
        self.configs.retain(|(seqno, _)| *seqno <= after);
        self.origins.clear();
        let entries = std::mem::take(&mut self.entries);
        for entry in &entries {
            if let EntryBody::Proposal(proposal) = &entry.body {
                self.origins.insert(
                    proposal.id.origin,
                    (proposal.id.incarnation, proposal.id.counter),
                );
            }
        }
        self.entries = entries;
    }

    fn observe(&mut self, entry: &Entry) {
        match &entry.body {
            EntryBody::Proposal(proposal) => {
                self.origins.insert(
                    proposal.id.origin,
                    (proposal.id.incarnation, proposal.id.counter),
                );
            }
            EntryBody::Reconfigure { members, .. } => {
                self.configs.push((entry.seqno, members.clone()));
            }
            EntryBody::ViewStart => {}
        }
    }

    /// The latest configuration in the log (empty when the log holds none).
    pub fn config(&self) -> &[MemberId] {
        self.configs
            .last()
            .map_or(&[], |(_, members)| members.as_slice())
    }

    /// The seqno of the latest configuration entry.
    pub fn config_seqno(&self) -> Seqno {
        self.configs.last().map_or(Seqno::ZERO, |(seqno, _)| *seqno)
    }

    /// The configuration before the latest one (empty if none).
    pub fn previous_config(&self) -> &[MemberId] {
        let count = self.configs.len();
        if count < 2 {
            return &[];
        }
        &self.configs[count - 2].1
    }

    /// The configuration in effect at `seqno` (the latest at or before it).
    pub fn config_at(&self, seqno: Seqno) -> &[MemberId] {
        self.configs
            .iter()
            .rev()
            .find(|(position, _)| *position <= seqno)
            .map_or(&[], |(_, members)| members.as_slice())
    }

    /// Highest ordered proposal of `origin`.
    pub fn origin_position(&self, origin: MemberId) -> Option<OriginPosition> {
        self.origins.get(&origin).copied()
    }

    /// The whole origin table, for the sequencer to rebuild its acceptance state.
    pub fn origins(&self) -> &HashMap<MemberId, OriginPosition> {
        &self.origins
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcs::entry::Proposal;
    use crate::gcs::types::ProposalId;

    fn proposal(seqno: u64, view: u64, origin: u128, counter: u64) -> Entry {
        Entry {
            seqno: Seqno(seqno),
            view: ViewId(view),
            body: EntryBody::Proposal(Proposal {
                id: ProposalId {
                    origin: MemberId(origin),
                    incarnation: Incarnation(1),
                    counter,
                },
                payload: vec![1, 2].into(),
            }),
        }
    }

    #[test]
    fn truncation_recomputes_the_origin_table() {
        let mut log = Log::default();
        log.append(proposal(1, 1, 5, 1));
        log.append(proposal(2, 1, 5, 2));
        assert_eq!(log.origin_position(MemberId(5)), Some((Incarnation(1), 2)));
        log.truncate_after(Seqno(1));
        assert_eq!(log.origin_position(MemberId(5)), Some((Incarnation(1), 1)));
        assert_eq!(log.last_seqno(), Seqno(1));
    }

    #[test]
    fn restored_log_is_cut_at_the_first_gap() {
        let log = Log::from_entries(vec![proposal(1, 1, 5, 1), proposal(3, 1, 5, 2)]);
        assert_eq!(log.last_seqno(), Seqno(1));
    }
}

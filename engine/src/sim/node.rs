//! One simulated member: its gcs core (absent while crashed), its disk, and the
//! counters that make stale events harmless.
//!
//! This module owns a member's simulated state; it must never schedule events (the
//! world does) nor look inside the core beyond its public API.

use std::collections::BTreeMap;

use tutti_net::gcs::{Gcs, MemberId, MemberState, Status};

use super::disk::Disk;
use super::txn_node::TxnNode;

/// A simulated member.
pub(super) struct Node {
    /// Its member id (a fresh one for every replacement node).
    pub(super) id: MemberId,
    /// The running core; `None` while crashed.
    pub(super) gcs: Option<Gcs>,
    /// Its disk, which survives crashes.
    pub(super) disk: Disk,
    /// Bumped at every crash: events of an earlier life are ignored, and every life is
    /// one delivery stream for the checkers.
    pub(super) life: u64,
    /// Bumped at every `SetTimer`: only the latest timer fires.
    pub(super) timer_generation: u64,
    /// Replaced by a fresh node (after leaving or being expelled): never runs again.
    pub(super) retired: bool,
    /// Proposals made, for unique payload tags.
    pub(super) proposals: u64,
    /// How this node's core last showed each other member (`MemberStateChanged`).
    pub(super) shown: BTreeMap<MemberId, MemberState>,
    /// Its transactional state in the bank workload; `None` while crashed (it is in
    /// memory) and in the messages workload.
    pub(super) txn: Option<TxnNode>,
    /// The highest low watermark it ever proposed, over all its lives: it proposes only
    /// higher ones, so every payload it proposes is unique.
    pub(super) low_watermark_proposed: u64,
}

impl Node {
    pub(super) fn new(id: MemberId, gcs: Gcs) -> Node {
        Node {
            id,
            gcs: Some(gcs),
            disk: Disk::default(),
            life: 0,
            timer_generation: 0,
            retired: false,
            proposals: 0,
            shown: BTreeMap::new(),
            txn: None,
            low_watermark_proposed: 0,
        }
    }

    /// Running and not stopped.
    pub(super) fn is_running(&self) -> bool {
        !self.retired
            && self
                .gcs
                .as_ref()
                .is_some_and(|gcs| gcs.status() != Status::Stopped)
    }

    /// Crashed (and due a restart).
    pub(super) fn is_crashed(&self) -> bool {
        !self.retired && self.gcs.is_none()
    }

    /// Stopped for good (left, expelled, ERROR): due a replacement.
    pub(super) fn is_stopped(&self) -> bool {
        !self.retired
            && self
                .gcs
                .as_ref()
                .is_some_and(|gcs| gcs.status() == Status::Stopped)
    }

    /// In normal status and ONLINE.
    pub(super) fn is_online(&self) -> bool {
        self.gcs.as_ref().is_some_and(|gcs| {
            gcs.status() == Status::Normal && gcs.own_state() == MemberState::Online
        })
    }
}

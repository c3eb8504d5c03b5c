//! The atomics the write-set index is built on, swapped for loom's under `--cfg loom`.
//!
//! The index's concurrency protocol (see [`super::index`]) is proved by the loom model in
//! `engine/tests/index_loom.rs`. For the proof to cover the real code, the index must use
//! exactly these re-exports and never `std::sync::atomic` directly. This module owns no
//! state and must never grow logic: it only chooses an implementation.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};

/// Tells the scheduler a reader is waiting for the writer to finish a change.
///
/// Under loom a spinning thread must yield, or the model checker explores the spin
/// forever; on real hardware it is the CPU's spin-wait hint.
#[inline]
pub(crate) fn spin_wait() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

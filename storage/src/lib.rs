//! tutti-storage: everything tutti keeps on disk or in memory for a member's database.
//!
//! It owns three things, each in its own module:
//!
//! - [`log`]: the segmented, memory-mapped, hash-chained log of ordered entries (DESIGN.md
//!   section 11), with its crash recovery, and [`meta`], the small always-fsynced record
//!   beside it (view number, incarnation, commit point).
//! - [`snapshot`]: checksummed, streamed files holding the store's state at one seqno.
//! - [`store`]: the in-memory MVCC key-value map whose versions are tagged with the seqno
//!   that wrote them (DESIGN.md section 6).
//!
//! It must never know about the network, the group protocol or certification: it stores
//! bytes at positions and versions at seqnos, and the engine gives them meaning. The crate
//! never panics on file content: every decoding path returns a typed error.

pub mod log;
pub mod meta;
pub mod snapshot;
pub mod store;
mod types;

pub use types::{Seqno, ViewNumber};

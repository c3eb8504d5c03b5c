//! Every limit of the appliers, named, with the relations between them checked at compile
//! time.

/// Worker threads when the configuration does not say: one per core of the 2-core machines
/// the engine is measured on (DESIGN.md section 12: measure before adding more).
pub const APPLIER_WORKERS_DEFAULT: usize = 2;
/// The most worker threads. A transaction records the workers it involves in one `u64`
/// bit set, so this cannot exceed 64; more workers than cores only adds context switches.
pub const APPLIER_WORKERS_MAX: usize = 64;

/// Bytes of writes (keys plus values) queued to the workers when the configuration does
/// not say: 64 MiB, about half a million 100-byte writes, many batches of the sequencer.
pub const APPLIER_QUEUE_BYTES_DEFAULT: usize = 64 << 20;

/// Parts (one transaction's share of one worker) a worker's queue holds. It bounds the
/// queue's memory when transactions write almost nothing (the byte bound would let an
/// unbounded number of empty parts through); 16384 parts of 40 bytes are 640 KiB.
pub const APPLIER_QUEUE_PARTS_MAX: usize = 1 << 14;

/// How many parts a worker installs between two reports of its progress: each report
/// releases the parts' bytes to the submitter and may advance the watermark. Fewer means
/// a watermark that follows the installs more closely, more means fewer shared locks.
pub const APPLIER_REPORT_PARTS: usize = 64;

/// Committed transactions whose apply latency is being timed at once (16 bytes each).
/// The queues' part bound keeps far fewer in flight; past it, samples are skipped.
pub const APPLY_LATENCY_PENDING_MAX: usize = 1 << 16;

const _: () = assert!(APPLIER_WORKERS_DEFAULT >= 1);
const _: () = assert!(APPLIER_WORKERS_DEFAULT <= APPLIER_WORKERS_MAX);
// The set of workers a transaction involves is a `u64` bit set.
const _: () = assert!(APPLIER_WORKERS_MAX <= u64::BITS as usize);
const _: () = assert!(APPLIER_QUEUE_BYTES_DEFAULT > 0);
// A report happens at least once per drained queue, so it must fit in one.
const _: () = assert!(APPLIER_REPORT_PARTS >= 1 && APPLIER_REPORT_PARTS <= APPLIER_QUEUE_PARTS_MAX);

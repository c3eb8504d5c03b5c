//! The driver: client threads running a workload against a [`Target`], closed or open
//! loop, recording latencies into hdrhistograms.
//!
//! ```text
//!  start ── warmup ──┬──────────── duration ────────────┐ end
//!                    measure_start                       (clients stop starting ops)
//! ```
//!
//! - **Closed loop** (no rate): each client starts its next operation as soon as the
//!   previous one ended. Latency is measured from the send.
//! - **Open loop** (`rate` operations per second over all clients): client `c`'s
//!   operation `i` is due at `start + c / rate + i * clients / rate`, whatever happened
//!   before. A client that falls behind sends at once, and the latency is measured from
//!   the *intended* start, so a stall of the target is charged to every operation that
//!   should have started during it (no coordinated omission). The latency from the
//!   actual send is recorded too: the two differ by the queueing delay. Operations due
//!   before the end but never sent (the client was still behind at the end) are
//!   counted as `unsent`.
//!
//! Only operations that started (closed loop: were sent; open loop: were due) inside
//! the measured window are recorded; throughput is what was recorded over `duration`.
//! Every client thread is joined before [`drive`] returns.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::target::{BenchError, Outcome, Target};
use crate::workload::{Operation, OperationSource};

/// Largest latency recorded (longer ones are clamped), microseconds.
pub const LATENCY_US_MAX: u64 = 120_000_000;
/// Most client threads.
pub const CLIENTS_MAX: usize = 4096;
/// How often the observer is called.
const OBSERVE_EVERY: Duration = Duration::from_millis(100);
/// A client's pause after a failure, so a dead connection does not spin.
const FAILURE_PAUSE: Duration = Duration::from_millis(1);

/// How the clients run.
#[derive(Clone, Debug)]
pub struct DriverOptions {
    /// Client threads, each with its own session.
    pub clients: usize,
    /// The measured window.
    pub duration: Duration,
    /// Run before the window, not recorded.
    pub warmup: Duration,
    /// Open loop at this many operations per second over all clients; closed otherwise.
    pub rate: Option<f64>,
    /// Seed of the clients' RNGs (client `c` uses `seed + c`).
    pub seed: u64,
}

/// Counts seen while the run goes on (every phase, warmup included).
#[derive(Clone, Copy, Debug, Default)]
pub struct Live {
    /// Time since the clients started.
    pub elapsed: Duration,
    /// The whole run: warmup and duration.
    pub total: Duration,
    /// Operations committed.
    pub committed: u64,
    /// Operations aborted.
    pub aborted: u64,
    /// Operations failed.
    pub failed: u64,
}

/// What the measured window recorded.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Operations committed (reads included).
    pub committed: u64,
    /// Of which reads.
    pub reads: u64,
    /// Operations aborted after the target's retries.
    pub aborted: u64,
    /// Operations failed.
    pub failed: u64,
    /// Runs retried inside the target.
    pub retries: u64,
    /// Open loop: operations due in the window but never sent.
    pub unsent: u64,
    /// The window's length.
    pub elapsed: Duration,
    /// Latency of commits, microseconds (open loop: from the intended start).
    pub commit_latency: Histogram<u64>,
    /// Latency of aborts, microseconds (as for commits).
    pub abort_latency: Histogram<u64>,
    /// Open loop only: latency of commits from the actual send.
    pub commit_latency_from_send: Option<Histogram<u64>>,
    /// The first failure's message.
    pub first_failure: Option<String>,
}

/// A latency histogram with the suite's bounds (1 µs .. 120 s, 3 significant digits).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(LATENCY_US_MAX)
        .clamp(1, LATENCY_US_MAX)
}

struct Shared {
    committed: AtomicU64,
    aborted: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicBool,
    ready: Barrier,
    go: Barrier,
    start: Mutex<Option<Instant>>,
}

/// One client's share of [`Measured`].
struct ClientMeasured {
    committed: u64,
    reads: u64,
    aborted: u64,
    failed: u64,
    retries: u64,
    unsent: u64,
    commit_latency: Histogram<u64>,
    abort_latency: Histogram<u64>,
    from_send: Histogram<u64>,
    first_failure: Option<String>,
}

impl ClientMeasured {
    fn new() -> ClientMeasured {
        ClientMeasured {
            committed: 0,
            reads: 0,
            aborted: 0,
            failed: 0,
            retries: 0,
            unsent: 0,
            commit_latency: latency_histogram(),
            abort_latency: latency_histogram(),
            from_send: latency_histogram(),
            first_failure: None,
        }
    }

    /// Records one operation of the window.
    fn record(
        &mut self,
        operation: &Operation,
        outcome: &Outcome,
        latency: Duration,
        from_send: Duration,
    ) {
        match outcome {
            Outcome::Committed { retries } => {
                self.committed += 1;
                self.retries += u64::from(*retries);
                if matches!(operation, Operation::Read { .. }) {
                    self.reads += 1;
                }
                self.commit_latency.saturating_record(micros(latency));
                self.from_send.saturating_record(micros(from_send));
            }
            Outcome::Aborted { retries } => {
                self.aborted += 1;
                self.retries += u64::from(*retries);
                self.abort_latency.saturating_record(micros(latency));
            }
            Outcome::Failed(message) => {
                self.failed += 1;
                self.first_failure.get_or_insert_with(|| message.clone());
            }
        }
    }
}

/// Runs the clients and returns what the window recorded. `observe` is called on this
/// thread about every 100 ms while the clients run.
pub fn drive(
    target: &dyn Target,
    source: &OperationSource,
    options: &DriverOptions,
    observe: &mut dyn FnMut(&Live),
) -> Result<Measured, BenchError> {
    if options.clients == 0 || options.clients > CLIENTS_MAX {
        return Err(BenchError::Options(format!(
            "--clients {} is out of range: use 1..={CLIENTS_MAX}",
            options.clients
        )));
    }
    if let Some(rate) = options.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(BenchError::Options(format!(
                "--rate {rate} is invalid: use a positive number of operations per second"
            )));
        }
    }
    let shared = Shared {
        committed: AtomicU64::new(0),
        aborted: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        cancelled: AtomicBool::new(false),
        ready: Barrier::new(options.clients + 1),
        go: Barrier::new(options.clients + 1),
        start: Mutex::new(None),
    };
    let total = options.warmup + options.duration;
    let results: Vec<Result<ClientMeasured, BenchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..options.clients)
            .map(|client| {
                let shared = &shared;
                scope.spawn(move || run_client(target, source, options, shared, client))
            })
            .collect();
        shared.ready.wait();
        let start = Instant::now();
        *shared.start.lock().expect("start lock") = Some(start);
        shared.go.wait();
        while !shared.cancelled.load(Ordering::Relaxed) && start.elapsed() < total {
            std::thread::sleep(OBSERVE_EVERY.min(total.saturating_sub(start.elapsed())));
            observe(&Live {
                elapsed: start.elapsed().min(total),
                total,
                committed: shared.committed.load(Ordering::Relaxed),
                aborted: shared.aborted.load(Ordering::Relaxed),
                failed: shared.failed.load(Ordering::Relaxed),
            });
        }
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a client thread panicked"))
            .collect()
    });
    let mut measured = Measured {
        committed: 0,
        reads: 0,
        aborted: 0,
        failed: 0,
        retries: 0,
        unsent: 0,
        elapsed: options.duration,
        commit_latency: latency_histogram(),
        abort_latency: latency_histogram(),
        commit_latency_from_send: options.rate.map(|_| latency_histogram()),
        first_failure: None,
    };
    for result in results {
        let client = result?;
        measured.committed += client.committed;
        measured.reads += client.reads;
        measured.aborted += client.aborted;
        measured.failed += client.failed;
        measured.retries += client.retries;
        measured.unsent += client.unsent;
        measured
            .commit_latency
            .add(&client.commit_latency)
            .expect("same bounds");
        measured
            .abort_latency
            .add(&client.abort_latency)
            .expect("same bounds");
        if let Some(from_send) = &mut measured.commit_latency_from_send {
            from_send.add(&client.from_send).expect("same bounds");
        }
        if measured.first_failure.is_none() {
            measured.first_failure = client.first_failure;
        }
    }
    Ok(measured)
}

fn run_client(
    target: &dyn Target,
    source: &OperationSource,
    options: &DriverOptions,
    shared: &Shared,
    client: usize,
) -> Result<ClientMeasured, BenchError> {
    let session = target.session(client);
    if session.is_err() {
        shared.cancelled.store(true, Ordering::Relaxed);
    }
    shared.ready.wait();
    shared.go.wait();
    let mut session = session?;
    if shared.cancelled.load(Ordering::Relaxed) {
        return Ok(ClientMeasured::new());
    }
    let start = shared.start.lock().expect("start lock").expect("start set");
    let measure_start = start + options.warmup;
    let end = measure_start + options.duration;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed.wrapping_add(client as u64));
    let mut measured = ClientMeasured::new();
    // Open loop: the gap between this client's operations, and its first due time.
    #[allow(clippy::cast_precision_loss)] // client counts far below 2^52
    let schedule = options.rate.map(|rate| {
        let interval = Duration::from_secs_f64(options.clients as f64 / rate);
        (
            interval,
            start + Duration::from_secs_f64(client as f64 / rate),
        )
    });
    let mut index: u32 = 0;
    loop {
        if shared.cancelled.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        let intended = match schedule {
            None if now >= end => break,
            None => now,
            Some((interval, first)) => {
                let due = first + interval * index;
                if due >= end {
                    break;
                }
                if now >= end {
                    // Still behind at the end: what was due and never sent.
                    let behind = (end - due).as_secs_f64() / interval.as_secs_f64();
                    #[allow(clippy::cast_sign_loss)] // end > due, so positive
                    let behind = behind.ceil() as u64;
                    measured.unsent += behind;
                    break;
                }
                if due > now {
                    std::thread::sleep(due - now);
                }
                due
            }
        };
        index = index.saturating_add(1);
        let operation = source.next_operation(&mut rng);
        let sent = Instant::now();
        let outcome = session.execute(&operation);
        let done = Instant::now();
        match &outcome {
            Outcome::Committed { .. } => &shared.committed,
            Outcome::Aborted { .. } => &shared.aborted,
            Outcome::Failed(_) => &shared.failed,
        }
        .fetch_add(1, Ordering::Relaxed);
        if intended >= measure_start {
            measured.record(&operation, &outcome, done - intended, done - sent);
        }
        if matches!(outcome, Outcome::Failed(_)) {
            std::thread::sleep(FAILURE_PAUSE);
        }
    }
    Ok(measured)
}

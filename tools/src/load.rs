//! `tutti load`: proposes small messages through several members (`GROUP PROPOSE` over
//! RESP, pipelined) and reports delivered messages per second and latency percentiles
//! (hdrhistogram), optionally beside the loopback baseline measured in the same run.
//!
//! Two modes:
//! - **Open loop** (default): message `i` of a member is due at `start + i / rate`, and
//!   its latency is measured from that intended time, so a stall shows in the
//!   percentiles instead of slowing the sender (no coordinated omission). Every message
//!   due is written at once, up to `SEND_BATCH_MAX` per write. The latency from the
//!   actual write is reported too: the difference is the load generator's own lateness
//!   (a sleeping sender wakes late on a busy machine), not the group's.
//! - **Closed loop** (`--window N`): each member has at most N proposals in flight; new
//!   ones are written as soon as replies come back, and latency is measured from the
//!   actual write. This finds the group's saturation throughput without guessing rates.
//!
//! `--baseline` first measures the loopback round trip (`tutti_bench::baseline`) and
//! prints the latencies as multiples of it. A member whose connection fails stops being
//! loaded and its lost replies count as errors; the others go on. Everything is
//! bounded: the run's duration, the replies in flight per member, the wait for the last
//! replies.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;
use tutti_bench::baseline::{self, RoundTrip};

/// Replies one member may owe before the sender waits.
const IN_FLIGHT_MAX: usize = 20_000;
/// Proposals written in one write: the sender announces each to the reader before
/// writing, so a batch must stay well below `IN_FLIGHT_MAX` or the sender could wait
/// for replies to proposals it has not written yet.
const SEND_BATCH_MAX: usize = 1024;
/// How long the last replies are waited for after the run.
const DRAIN_WAIT: Duration = Duration::from_secs(15);
/// The open-loop sender's tick.
const SEND_TICK: Duration = Duration::from_millis(1);
/// The closed-loop sender's pause while its window is full.
const WINDOW_POLL: Duration = Duration::from_micros(50);
/// Largest latency recorded (longer ones are clamped), in microseconds.
const LATENCY_US_MAX: u64 = 120_000_000;
/// Largest payload accepted.
const PAYLOAD_BYTES_MAX: usize = 1024 * 1024;
/// Highest total rate accepted, messages per second.
const RATE_MAX: u64 = 10_000_000;
/// Round trips of the `--baseline` measurement.
const BASELINE_ROUND_TRIPS: usize = 20_000;
/// Ping size of the `--baseline` measurement.
const BASELINE_PING_BYTES: usize = 16;
/// About how long the paced baseline pings for.
const PACED_BASELINE_TIME: Duration = Duration::from_millis(500);
/// Fewest paced pings.
const PACED_PINGS_MIN: usize = 50;
/// Bounds of the paced baseline's pause between pings.
const PACED_INTERVAL_MIN: Duration = Duration::from_micros(100);
/// See `PACED_INTERVAL_MIN`.
const PACED_INTERVAL_MAX: Duration = Duration::from_millis(10);

const _: () = assert!(SEND_BATCH_MAX * 4 <= IN_FLIGHT_MAX);

/// `tutti load` options.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Client (RESP) addresses of the members to propose through, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub addrs: Vec<SocketAddr>,
    /// Total proposals per second, spread evenly over the members (open loop).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Closed loop instead: at most this many proposals in flight per member, each
    /// written as soon as an earlier one is answered (`--rate` is then ignored).
    #[arg(long)]
    pub window: Option<usize>,
    /// How long to propose, for example 10s.
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Payload size of each proposal.
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,
    /// Measure the loopback round trip first and print latencies as multiples of it.
    #[arg(long)]
    pub baseline: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// How proposals are paced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// Open loop: this many proposals per second in total.
    Rate(u64),
    /// Closed loop: at most this many in flight per member.
    Window(usize),
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// Proposals written.
    pub sent: u64,
    /// Proposals answered with their seqno (delivered at the member proposed through).
    pub delivered: u64,
    /// Error replies and replies lost with a failed connection.
    pub errors: u64,
    /// From the first intended send to the last reply.
    pub elapsed: Duration,
    /// Latency percentiles in microseconds from the intended send (open loop) or the
    /// write (closed loop): p50, p90, p99, p99.9, max.
    pub latency_us: [u64; 5],
    /// Latency percentiles in microseconds from the moment the sender built the write
    /// that carried the proposal: p50, p90, p99, p99.9, max.
    pub write_latency_us: [u64; 5],
    /// Per member: the highest seqno it answered.
    pub last_seqno: Vec<u64>,
}

impl LoadReport {
    /// Delivered proposals per second.
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    pub fn delivered_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.delivered as f64 / seconds
        } else {
            0.0
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// An option is out of range.
    #[error("{0}")]
    Option(String),
    /// A member could not be reached.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The member.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The loopback baseline could not be measured.
    #[error("baseline: {0}")]
    Baseline(#[from] baseline::BaselineError),
}

/// Runs `tutti load`; returns the exit code.
pub fn run(args: &LoadArgs) -> i32 {
    let duration = match crate::config::parse_duration("duration", &args.duration) {
        Ok(duration) => duration,
        Err(error) => {
            eprintln!("tutti load: {error}");
            return 2;
        }
    };
    let pace = args.window.map_or(Pace::Rate(args.rate), Pace::Window);
    let outcome = measure_baseline(args.baseline, pace).and_then(|rtt| {
        let report = run_paced(&args.addrs, pace, duration, args.payload_bytes)?;
        Ok((rtt, report))
    });
    match outcome {
        Ok((rtt, report)) => {
            print_report(pace, &report, rtt.as_ref());
            if let Some(path) = &args.json {
                let text = report_json(pace, args.payload_bytes, &report, rtt.as_ref());
                if let Err(error) = std::fs::write(path, text) {
                    eprintln!("tutti load: cannot write {}: {error}", path.display());
                    return 1;
                }
            }
            i32::from(report.delivered == 0)
        }
        Err(error) => {
            eprintln!("tutti load: {error}");
            1
        }
    }
}

/// The loopback round trips a run is compared with.
#[derive(Clone, Copy, Debug)]
pub struct Baselines {
    /// Back to back (the physical floor with busy threads).
    pub back_to_back: RoundTrip,
    /// Open loop only: one ping per interval of the run's total rate, so the threads
    /// idle between messages as the group's do.
    pub paced: Option<(Duration, RoundTrip)>,
}

/// Measures and prints the baselines, if wanted.
fn measure_baseline(wanted: bool, pace: Pace) -> Result<Option<Baselines>, LoadError> {
    if !wanted {
        return Ok(None);
    }
    let back_to_back = baseline::round_trip(BASELINE_ROUND_TRIPS, BASELINE_PING_BYTES)?;
    println!(
        "loopback round trip (std blocking sockets, TCP_NODELAY, {} back-to-back pings of {BASELINE_PING_BYTES} bytes): p50 {:.1} us p99 {:.1} us mean {:.1} us",
        back_to_back.count, back_to_back.p50_us, back_to_back.p99_us, back_to_back.mean_us
    );
    let paced = match pace {
        Pace::Window(_) => None,
        Pace::Rate(rate) => {
            // One ping per message the group sees, at the run's total rate.
            let interval = (Duration::from_secs(1) / u32::try_from(rate).unwrap_or(u32::MAX))
                .clamp(PACED_INTERVAL_MIN, PACED_INTERVAL_MAX);
            let pings =
                usize::try_from(PACED_BASELINE_TIME.as_nanos() / interval.as_nanos().max(1))
                    .unwrap_or(1)
                    .max(PACED_PINGS_MIN);
            let rtt = baseline::round_trip_paced(pings, BASELINE_PING_BYTES, interval)?;
            println!(
                "loopback round trip paced like the load (one ping every {} us, {} pings): p50 {:.1} us p99 {:.1} us mean {:.1} us",
                interval.as_micros(), rtt.count, rtt.p50_us, rtt.p99_us, rtt.mean_us
            );
            Some((interval, rtt))
        }
    };
    Ok(Some(Baselines {
        back_to_back,
        paced,
    }))
}

#[allow(clippy::cast_precision_loss)] // microseconds far below 2^52
fn print_report(pace: Pace, report: &LoadReport, baselines: Option<&Baselines>) {
    let mode = match pace {
        Pace::Rate(rate) => format!("open loop at {rate}/s"),
        Pace::Window(window) => format!("closed loop, {window} in flight per member"),
    };
    println!(
        "{mode}: sent {} delivered {} errors {} in {:.2}s: {:.0} delivered/s",
        report.sent,
        report.delivered,
        report.errors,
        report.elapsed.as_secs_f64(),
        report.delivered_per_second()
    );
    let [p50, p90, p99, p999, max] = report.latency_us;
    let from = match pace {
        Pace::Rate(_) => "from intended send",
        Pace::Window(_) => "from send",
    };
    println!("latency us ({from}): p50 {p50} p90 {p90} p99 {p99} p99.9 {p999} max {max}");
    if let Pace::Rate(_) = pace {
        let [p50, p90, p99, p999, max] = report.write_latency_us;
        println!("latency us (from write): p50 {p50} p90 {p90} p99 {p99} p99.9 {p999} max {max}");
    }
    let Some(baselines) = baselines else {
        return;
    };
    let rtt = &baselines.back_to_back;
    println!(
        "latency / loopback round trip p50 ({:.1} us): p50 {:.1}x p99 {:.1}x",
        rtt.p50_us,
        p50 as f64 / rtt.p50_us,
        p99 as f64 / rtt.p50_us
    );
    if let Some((_, paced)) = &baselines.paced {
        println!(
            "latency / paced loopback round trip p50 ({:.1} us): p50 {:.1}x p99 {:.1}x",
            paced.p50_us,
            p50 as f64 / paced.p50_us,
            p99 as f64 / paced.p50_us
        );
    }
}

fn report_json(
    pace: Pace,
    payload_bytes: usize,
    report: &LoadReport,
    baselines: Option<&Baselines>,
) -> String {
    let [p50, p90, p99, p999, max] = report.latency_us;
    let [w50, w90, w99, w999, wmax] = report.write_latency_us;
    let (mode, amount) = match pace {
        Pace::Rate(rate) => ("rate", rate),
        Pace::Window(window) => ("window", window as u64),
    };
    let rtt_json = |rtt: &RoundTrip| {
        format!(
            "{{\"round_trips\":{},\"p50_us\":{:.2},\"p99_us\":{:.2},\"mean_us\":{:.2}}}",
            rtt.count, rtt.p50_us, rtt.p99_us, rtt.mean_us
        )
    };
    let baseline = baselines.map_or_else(|| "null".to_owned(), |b| rtt_json(&b.back_to_back));
    let paced = baselines
        .and_then(|b| b.paced)
        .map_or_else(|| "null".to_owned(), |(_, rtt)| rtt_json(&rtt));
    format!(
        "{{\"mode\":\"{mode}\",\"{mode}\":{amount},\"payload_bytes\":{payload_bytes},\
         \"sent\":{},\"delivered\":{},\"errors\":{},\"seconds\":{:.3},\"delivered_per_second\":{:.0},\
         \"latency_us\":{{\"p50\":{p50},\"p90\":{p90},\"p99\":{p99},\"p99_9\":{p999},\"max\":{max}}},\
         \"write_latency_us\":{{\"p50\":{w50},\"p90\":{w90},\"p99\":{w99},\"p99_9\":{w999},\"max\":{wmax}}},\
         \"baseline_round_trip\":{baseline},\"baseline_round_trip_paced\":{paced}}}\n",
        report.sent,
        report.delivered,
        report.errors,
        report.elapsed.as_secs_f64(),
        report.delivered_per_second()
    )
}

/// Proposes at `rate` messages per second in total through `addrs` for `duration`.
pub fn run_load(
    addrs: &[SocketAddr],
    rate: u64,
    duration: Duration,
    payload_bytes: usize,
) -> Result<LoadReport, LoadError> {
    run_paced(addrs, Pace::Rate(rate), duration, payload_bytes)
}

/// Proposes through `addrs` for `duration`, paced by `pace`.
#[allow(clippy::cast_precision_loss)] // rates and member counts are far below 2^52
pub fn run_paced(
    addrs: &[SocketAddr],
    pace: Pace,
    duration: Duration,
    payload_bytes: usize,
) -> Result<LoadReport, LoadError> {
    let pace_valid = match pace {
        Pace::Rate(rate) => (1..=RATE_MAX).contains(&rate),
        Pace::Window(window) => (1..=IN_FLIGHT_MAX).contains(&window),
    };
    if addrs.is_empty() || !pace_valid || !(16..=PAYLOAD_BYTES_MAX).contains(&payload_bytes) {
        return Err(LoadError::Option(format!(
            "need at least one address, 1 <= rate <= {RATE_MAX}, 1 <= window <= {IN_FLIGHT_MAX} \
             and 16 <= payload_bytes <= {PAYLOAD_BYTES_MAX}"
        )));
    }
    let start = Instant::now();
    let mut workers = Vec::new();
    for (index, addr) in addrs.iter().enumerate() {
        let stream =
            TcpStream::connect_timeout(addr, Duration::from_secs(5)).map_err(|source| {
                LoadError::Connect {
                    addr: *addr,
                    source,
                }
            })?;
        let _ = stream.set_nodelay(true);
        let interval = match pace {
            Pace::Rate(rate) => {
                let per_member = (rate as f64 / addrs.len() as f64).max(f64::MIN_POSITIVE);
                Duration::from_secs_f64(1.0 / per_member)
            }
            Pace::Window(_) => Duration::ZERO,
        };
        let plan = Plan {
            index,
            start,
            interval,
            window: match pace {
                Pace::Rate(_) => None,
                Pace::Window(window) => Some(window as u64),
            },
            duration,
            payload_bytes,
        };
        workers.push(thread::spawn(move || drive_member(stream, &plan)));
    }
    collect(workers, start)
}

fn collect(
    workers: Vec<thread::JoinHandle<Outcome>>,
    start: Instant,
) -> Result<LoadReport, LoadError> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_US_MAX, 3)
        .map_err(|error| LoadError::Option(error.to_string()))?;
    let mut write_histogram = histogram.clone();
    let mut report = LoadReport {
        sent: 0,
        delivered: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency_us: [0; 5],
        write_latency_us: [0; 5],
        last_seqno: Vec::new(),
    };
    for worker in workers {
        let outcome = worker.join().unwrap_or_default();
        report.sent += outcome.sent;
        report.delivered += outcome.delivered;
        report.errors += outcome.sent - outcome.delivered;
        report.last_seqno.push(outcome.last_seqno);
        let _ = histogram.add(&outcome.histogram);
        let _ = write_histogram.add(&outcome.write_histogram);
    }
    report.elapsed = start.elapsed();
    report.latency_us = percentiles(&histogram);
    report.write_latency_us = percentiles(&write_histogram);
    Ok(report)
}

fn percentiles(histogram: &Histogram<u64>) -> [u64; 5] {
    [
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.9),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max(),
    ]
}

struct Plan {
    index: usize,
    start: Instant,
    /// Open loop: the time between two proposals of this member.
    interval: Duration,
    /// Closed loop: the most proposals in flight.
    window: Option<u64>,
    duration: Duration,
    payload_bytes: usize,
}

struct Outcome {
    sent: u64,
    delivered: u64,
    last_seqno: u64,
    histogram: Histogram<u64>,
    write_histogram: Histogram<u64>,
}

/// One proposal as announced to the reader, before it is written.
#[derive(Clone, Copy)]
struct Due {
    /// When it should have been sent (open loop) or was sent (closed loop).
    intended: Instant,
    /// When the sender built the write that carries it.
    written: Instant,
}

impl Default for Outcome {
    fn default() -> Outcome {
        // Constant, valid bounds: a failure here is a bug in this file.
        let histogram =
            Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds");
        Outcome {
            sent: 0,
            delivered: 0,
            last_seqno: 0,
            write_histogram: histogram.clone(),
            histogram,
        }
    }
}

/// Sends on this thread and reads replies on another; returns the counts.
fn drive_member(stream: TcpStream, plan: &Plan) -> Outcome {
    let Ok(reader) = stream.try_clone() else {
        return Outcome::default();
    };
    let (due_tx, due_rx) = mpsc::sync_channel::<Due>(IN_FLIGHT_MAX);
    let answered = Arc::new(AtomicU64::new(0));
    let reader_answered = Arc::clone(&answered);
    let reading = thread::spawn(move || read_replies(reader, &due_rx, &reader_answered));
    precise_sleeps();
    let mut sender = Sender::new(stream, plan, due_tx);
    let sent = match plan.window {
        None => sender.open_loop(plan),
        Some(window) => sender.closed_loop(plan, window, &answered),
    };
    drop(sender);
    let mut outcome = reading.join().unwrap_or_default();
    outcome.sent = sent;
    outcome
}

/// One member's writing side: encodes proposals straight into one buffer (no frame
/// objects, no allocation per proposal) and announces each to the reader.
struct Sender {
    stream: TcpStream,
    due: mpsc::SyncSender<Due>,
    out: Vec<u8>,
    /// `*3 $5 GROUP $7 PROPOSE $<len>` up to the payload.
    prefix: Vec<u8>,
    payload: Vec<u8>,
    index: usize,
    sent: u64,
}

impl Sender {
    fn new(stream: TcpStream, plan: &Plan, due: mpsc::SyncSender<Due>) -> Sender {
        let prefix = format!(
            "*3\r\n$5\r\nGROUP\r\n$7\r\nPROPOSE\r\n${}\r\n",
            plan.payload_bytes
        )
        .into_bytes();
        Sender {
            stream,
            due,
            out: Vec::with_capacity(SEND_BATCH_MAX * (plan.payload_bytes + 48)),
            prefix,
            payload: vec![b'x'; plan.payload_bytes],
            index: plan.index,
            sent: 0,
        }
    }

    /// Appends proposal number `self.sent`, announced as due at `intended` and written
    /// in a write built at `written`.
    fn push(&mut self, intended: Instant, written: Instant) -> bool {
        // A tag makes every payload distinct (and traceable to its member and number).
        let mut tag = [b'0'; 18];
        write_decimal(&mut tag[..4], self.index as u64);
        tag[4] = b':';
        write_decimal(&mut tag[5..17], self.sent);
        tag[17] = b':';
        let len = tag.len().min(self.payload.len());
        self.payload[..len].copy_from_slice(&tag[..len]);
        self.out.extend_from_slice(&self.prefix);
        self.out.extend_from_slice(&self.payload);
        self.out.extend_from_slice(b"\r\n");
        if self.due.send(Due { intended, written }).is_err() {
            return false;
        }
        self.sent += 1;
        true
    }

    fn flush(&mut self) -> bool {
        let written = self.out.is_empty() || self.stream.write_all(&self.out).is_ok();
        self.out.clear();
        written
    }

    #[allow(clippy::cast_precision_loss)] // message counts far below 2^52
    fn open_loop(&mut self, plan: &Plan) -> u64 {
        let end = plan.start + plan.duration;
        loop {
            let now = Instant::now();
            if now >= end {
                return self.sent;
            }
            let mut intended = plan.start + plan.interval.mul_f64(self.sent as f64);
            let mut batch = 0;
            while intended <= now && batch < SEND_BATCH_MAX {
                if !self.push(intended, now) {
                    return self.sent;
                }
                batch += 1;
                intended = plan.start + plan.interval.mul_f64(self.sent as f64);
            }
            if !self.flush() {
                return self.sent;
            }
            if batch < SEND_BATCH_MAX {
                thread::sleep(SEND_TICK.min(intended.saturating_duration_since(Instant::now())));
            }
        }
    }

    fn closed_loop(&mut self, plan: &Plan, window: u64, answered: &AtomicU64) -> u64 {
        let end = plan.start + plan.duration;
        loop {
            let now = Instant::now();
            if now >= end {
                return self.sent;
            }
            let in_flight = self.sent - answered.load(Ordering::Acquire);
            let room = window.saturating_sub(in_flight).min(SEND_BATCH_MAX as u64);
            if room == 0 {
                thread::sleep(WINDOW_POLL);
                continue;
            }
            for _ in 0..room {
                if !self.push(now, now) {
                    return self.sent;
                }
            }
            if !self.flush() {
                return self.sent;
            }
        }
    }
}

/// Asks the kernel to wake this thread's sleeps on time: Linux lets a sleep overrun by
/// the thread's timer slack (50 µs by default) to batch wake-ups, and an open-loop sender
/// that wakes late adds that lateness to every latency it measures from the intended
/// send. Best effort: without it the sender is only less punctual.
fn precise_sleeps() {
    // SAFETY: prctl(PR_SET_TIMERSLACK, 1 ns) takes plain integer arguments and changes
    // only the calling thread's timer slack.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_u64, 0_u64, 0_u64, 0_u64) };
}

/// Writes `value` in decimal into `out`, right-aligned, zero-padded, truncated on the left.
fn write_decimal(out: &mut [u8], mut value: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + u8::try_from(value % 10).unwrap_or(0);
        value /= 10;
    }
}

fn read_replies(mut stream: TcpStream, due: &mpsc::Receiver<Due>, answered: &AtomicU64) -> Outcome {
    let mut outcome = Outcome::default();
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut pending: VecDeque<Due> = VecDeque::new();
    let mut sender_done = false;
    let mut drain_deadline: Option<Instant> = None;
    loop {
        while !sender_done && pending.len() < IN_FLIGHT_MAX {
            match due.try_recv() {
                Ok(announced) => pending.push_back(announced),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => sender_done = true,
            }
        }
        // Decode every complete reply, then drop the consumed bytes once (draining
        // after each reply would move the rest of the buffer every time).
        let mut consumed = 0;
        let mut replies = 0u64;
        while let Ok(Some((frame, used))) = decode(&buffer[consumed..]) {
            consumed += used;
            replies += 1;
            // The sender announces a proposal before writing it, so its reply never
            // comes first; a reply without one is from a server that misbehaves.
            let Some(announced) = pending.pop_front().or_else(|| due.recv().ok()) else {
                return outcome;
            };
            if let OwnedFrame::Integer(seqno) = frame {
                outcome.delivered += 1;
                outcome.last_seqno = outcome.last_seqno.max(u64::try_from(seqno).unwrap_or(0));
                let _ = outcome.histogram.record(micros_since(announced.intended));
                let _ = outcome
                    .write_histogram
                    .record(micros_since(announced.written));
            }
        }
        buffer.drain(..consumed);
        answered.fetch_add(replies, Ordering::Release);
        if sender_done {
            if pending.is_empty() {
                return outcome;
            }
            if Instant::now() >= *drain_deadline.get_or_insert_with(|| Instant::now() + DRAIN_WAIT)
            {
                return outcome;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => return outcome,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return outcome,
        }
    }
}

/// Microseconds since `at`, clamped to what the histograms record.
fn micros_since(at: Instant) -> u64 {
    u64::try_from(at.elapsed().as_micros())
        .unwrap_or(LATENCY_US_MAX)
        .clamp(1, LATENCY_US_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_is_zero_padded_and_truncated_on_the_left() {
        let mut out = [0u8; 4];
        write_decimal(&mut out, 42);
        assert_eq!(&out, b"0042");
        write_decimal(&mut out, 123_456);
        assert_eq!(&out, b"3456");
    }

    #[test]
    fn proposals_are_encoded_as_resp_arrays() {
        let (due, announced) = mpsc::sync_channel(4);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let stream = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let plan = Plan {
            index: 7,
            start: Instant::now(),
            interval: Duration::ZERO,
            window: None,
            duration: Duration::ZERO,
            payload_bytes: 20,
        };
        let mut sender = Sender::new(stream, &plan, due);
        assert!(sender.push(Instant::now(), Instant::now()));
        assert!(announced.try_recv().is_ok());
        let frame = redis_protocol::resp2::decode::decode(&sender.out)
            .expect("valid RESP")
            .expect("a whole frame");
        assert_eq!(frame.1, sender.out.len());
        let OwnedFrame::Array(items) = frame.0 else {
            panic!("not an array: {:?}", frame.0);
        };
        assert_eq!(items[0], OwnedFrame::BulkString(b"GROUP".to_vec()));
        assert_eq!(items[1], OwnedFrame::BulkString(b"PROPOSE".to_vec()));
        assert_eq!(
            items[2],
            OwnedFrame::BulkString(b"0007:000000000000:xx".to_vec())
        );
    }
}

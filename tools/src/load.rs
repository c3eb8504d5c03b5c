//! `tutti load`: proposes small messages at a fixed total rate through several members
//! (`GROUP PROPOSE` over RESP, pipelined) and reports delivered messages per second and
//! latency percentiles (hdrhistogram).
//!
//! Open loop: message `i` of a member is due at `start + i / rate`, and its latency is
//! measured from that intended time, so a stall shows in the percentiles instead of
//! slowing the sender (no coordinated omission). Every message due is written at once,
//! many per write. A member whose connection fails stops being loaded and its lost
//! replies count as errors; the others go on. Everything is bounded: the run's
//! duration, the replies in flight per member, the wait for the last replies.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use clap::Args;
use hdrhistogram::Histogram;
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::extend_encode;
use redis_protocol::resp2::types::{BytesFrame, OwnedFrame};

/// Replies one member may owe before the sender waits.
const IN_FLIGHT_MAX: usize = 20_000;
/// How long the last replies are waited for after the run.
const DRAIN_WAIT: Duration = Duration::from_secs(15);
/// The sender's tick.
const SEND_TICK: Duration = Duration::from_millis(1);
/// Largest latency recorded (longer ones are clamped), in microseconds.
const LATENCY_US_MAX: u64 = 120_000_000;
/// Largest payload accepted.
const PAYLOAD_BYTES_MAX: usize = 1024 * 1024;
/// Highest total rate accepted, messages per second.
const RATE_MAX: u64 = 10_000_000;

/// `tutti load` options.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Client (RESP) addresses of the members to propose through, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub addrs: Vec<SocketAddr>,
    /// Total proposals per second, spread evenly over the members.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// How long to propose, for example 10s.
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Payload size of each proposal.
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,
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
    /// Latency percentiles in microseconds: p50, p90, p99, p99.9, max.
    pub latency_us: [u64; 5],
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
    match run_load(&args.addrs, args.rate, duration, args.payload_bytes) {
        Ok(report) => {
            println!(
                "sent {} delivered {} errors {} in {:.2}s: {:.0} delivered/s",
                report.sent,
                report.delivered,
                report.errors,
                report.elapsed.as_secs_f64(),
                report.delivered_per_second()
            );
            let [p50, p90, p99, p999, max] = report.latency_us;
            println!("latency us (from intended send): p50 {p50} p90 {p90} p99 {p99} p99.9 {p999} max {max}");
            i32::from(report.delivered == 0)
        }
        Err(error) => {
            eprintln!("tutti load: {error}");
            1
        }
    }
}

/// Proposes at `rate` messages per second in total through `addrs` for `duration`.
#[allow(clippy::cast_precision_loss)] // rates and member counts are far below 2^52
pub fn run_load(
    addrs: &[SocketAddr],
    rate: u64,
    duration: Duration,
    payload_bytes: usize,
) -> Result<LoadReport, LoadError> {
    if addrs.is_empty()
        || !(1..=RATE_MAX).contains(&rate)
        || !(16..=PAYLOAD_BYTES_MAX).contains(&payload_bytes)
    {
        return Err(LoadError::Option(format!(
            "need at least one address, 1 <= rate <= {RATE_MAX} and 16 <= payload_bytes <= {PAYLOAD_BYTES_MAX}"
        )));
    }
    let per_member = (rate as f64 / addrs.len() as f64).max(f64::MIN_POSITIVE);
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
        let plan = Plan {
            index,
            start,
            interval: Duration::from_secs_f64(1.0 / per_member),
            duration,
            payload_bytes,
        };
        workers.push(thread::spawn(move || drive_member(stream, &plan)));
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_US_MAX, 3)
        .map_err(|error| LoadError::Option(error.to_string()))?;
    let mut report = LoadReport {
        sent: 0,
        delivered: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency_us: [0; 5],
        last_seqno: Vec::new(),
    };
    for worker in workers {
        let outcome = worker.join().unwrap_or_default();
        report.sent += outcome.sent;
        report.delivered += outcome.delivered;
        report.errors += outcome.sent - outcome.delivered;
        report.last_seqno.push(outcome.last_seqno);
        let _ = histogram.add(&outcome.histogram);
    }
    report.elapsed = start.elapsed();
    report.latency_us = [
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.9),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max(),
    ];
    Ok(report)
}

struct Plan {
    index: usize,
    start: Instant,
    interval: Duration,
    duration: Duration,
    payload_bytes: usize,
}

struct Outcome {
    sent: u64,
    delivered: u64,
    last_seqno: u64,
    histogram: Histogram<u64>,
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
            histogram,
        }
    }
}

/// Sends on this thread and reads replies on another; returns the counts.
fn drive_member(stream: TcpStream, plan: &Plan) -> Outcome {
    let Ok(reader) = stream.try_clone() else {
        return Outcome::default();
    };
    let (due_tx, due_rx) = mpsc::sync_channel::<Instant>(IN_FLIGHT_MAX);
    let reading = thread::spawn(move || read_replies(reader, &due_rx));
    let sent = send_proposals(stream, plan, &due_tx);
    drop(due_tx);
    let mut outcome = reading.join().unwrap_or_default();
    outcome.sent = sent;
    outcome
}

#[allow(clippy::cast_precision_loss)] // message counts far below 2^52
fn send_proposals(mut stream: TcpStream, plan: &Plan, due: &mpsc::SyncSender<Instant>) -> u64 {
    let mut sent = 0u64;
    let mut out = BytesMut::new();
    let mut payload = vec![b'x'; plan.payload_bytes];
    loop {
        let now = Instant::now();
        if now >= plan.start + plan.duration {
            return sent;
        }
        out.clear();
        let mut intended = plan.start + plan.interval.mul_f64(sent as f64);
        while intended <= now {
            let tag = format!("{:04}:{sent:012}:", plan.index);
            let len = tag.len().min(payload.len());
            payload[..len].copy_from_slice(&tag.as_bytes()[..len]);
            let frame = BytesFrame::Array(vec![
                BytesFrame::BulkString(Bytes::from_static(b"GROUP")),
                BytesFrame::BulkString(Bytes::from_static(b"PROPOSE")),
                BytesFrame::BulkString(Bytes::copy_from_slice(&payload)),
            ]);
            if extend_encode(&mut out, &frame, false).is_err() || due.send(intended).is_err() {
                return sent;
            }
            sent += 1;
            intended = plan.start + plan.interval.mul_f64(sent as f64);
        }
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return sent;
        }
        thread::sleep(SEND_TICK.min(intended.saturating_duration_since(Instant::now())));
    }
}

fn read_replies(mut stream: TcpStream, due: &mpsc::Receiver<Instant>) -> Outcome {
    let mut outcome = Outcome::default();
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut pending: VecDeque<Instant> = VecDeque::new();
    let mut sender_done = false;
    let mut drain_deadline: Option<Instant> = None;
    loop {
        while !sender_done && pending.len() < IN_FLIGHT_MAX {
            match due.try_recv() {
                Ok(intended) => pending.push_back(intended),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => sender_done = true,
            }
        }
        while let Ok(Some((frame, used))) = decode(&buffer) {
            buffer.drain(..used);
            // The sender announces a proposal before writing it, so its reply never
            // comes first; a reply without one is from a server that misbehaves.
            let Some(intended) = pending.pop_front().or_else(|| due.recv().ok()) else {
                return outcome;
            };
            if let OwnedFrame::Integer(seqno) = frame {
                outcome.delivered += 1;
                outcome.last_seqno = outcome.last_seqno.max(u64::try_from(seqno).unwrap_or(0));
                let latency =
                    u64::try_from(intended.elapsed().as_micros()).unwrap_or(LATENCY_US_MAX);
                let _ = outcome.histogram.record(latency.clamp(1, LATENCY_US_MAX));
            }
        }
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

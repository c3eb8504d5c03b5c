//! The network baseline: what raw loopback TCP costs on this machine, printed beside
//! every group result so latency reads as a multiple of the physical floor (DESIGN.md
//! section 14).
//!
//! Two measurements, both over one TCP connection on 127.0.0.1 with `TCP_NODELAY`,
//! using plain blocking std sockets and OS threads (no async runtime, so the figure
//! is the kernel's and the scheduler's cost, not a runtime's):
//!
//! - **Round trip:** a client writes a small message and waits for the echo, `round_trips`
//!   times, one at a time; an echo thread answers. Each round trip is timed on its own
//!   and recorded in microseconds with 0.1 µs resolution (p50, p99, mean, min).
//!   Back to back by default; [`round_trip_paced`] sleeps between pings instead, so the
//!   threads go idle between messages as they do under a low, steady load (on a virtual
//!   machine waking an idle CPU costs far more than handing over a busy one).
//! - **Streaming throughput:** a writer thread writes `message_bytes` messages in chunks of
//!   many messages for a fixed time; a reader thread on the other end counts the bytes.
//!   Reported as bytes per second and messages per second.
//!
//! It binds 127.0.0.1 only, every socket has a timeout, and every thread it starts is
//! joined before it returns. It must never be pointed at another host.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// Most round trips one measurement may take.
pub const ROUND_TRIPS_MAX: usize = 10_000_000;
/// Largest ping message.
pub const PING_BYTES_MAX: usize = 64 * 1024;
/// Longest streaming measurement.
pub const STREAM_DURATION_MAX: Duration = Duration::from_secs(600);
/// Bytes the streaming writer hands to one `write` call.
const STREAM_CHUNK_BYTES: usize = 64 * 1024;
/// Timeout of every socket read and write: a stuck peer ends the run with an error.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What to measure.
#[derive(Clone, Copy, Debug)]
pub struct BaselineOptions {
    /// Ping-pongs timed for the round trip.
    pub round_trips: usize,
    /// Size of each ping (and its echo).
    pub ping_bytes: usize,
    /// How long the streaming writer writes; zero skips the streaming measurement.
    pub stream_duration: Duration,
    /// Size of one streamed message (the messages/s figure counts these).
    pub message_bytes: usize,
}

impl Default for BaselineOptions {
    fn default() -> BaselineOptions {
        BaselineOptions {
            round_trips: 20_000,
            ping_bytes: 16,
            stream_duration: Duration::from_secs(2),
            message_bytes: 100,
        }
    }
}

/// Loopback round-trip times, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoundTrip {
    /// Round trips timed.
    pub count: usize,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Fastest.
    pub min_us: f64,
}

/// Loopback streaming throughput on one connection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Throughput {
    /// Bytes the reader received.
    pub bytes: u64,
    /// From the first write to the last byte read.
    pub elapsed: Duration,
    /// Bytes per second.
    pub bytes_per_second: f64,
    /// Messages of `message_bytes` per second.
    pub messages_per_second: f64,
    /// The message size the previous figure counts.
    pub message_bytes: usize,
}

/// Both measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baseline {
    /// The round trip.
    pub round_trip: RoundTrip,
    /// The streaming throughput, unless it was skipped.
    pub throughput: Option<Throughput>,
}

/// Why a baseline measurement failed.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// An option is out of range.
    #[error("{0}")]
    Option(String),
    /// A socket operation failed.
    #[error("loopback {operation}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A measurement thread panicked (a bug in this module).
    #[error("the {0} thread panicked")]
    Thread(&'static str),
}

fn io(operation: &'static str) -> impl FnOnce(std::io::Error) -> BaselineError {
    move |source| BaselineError::Io { operation, source }
}

/// Runs the round trip, then the streaming throughput unless its duration is zero.
pub fn measure(options: &BaselineOptions) -> Result<Baseline, BaselineError> {
    let round_trip = round_trip(options.round_trips, options.ping_bytes)?;
    let throughput = if options.stream_duration.is_zero() {
        None
    } else {
        Some(throughput(options.stream_duration, options.message_bytes)?)
    };
    Ok(Baseline {
        round_trip,
        throughput,
    })
}

/// A connected pair of loopback sockets (client side, server side), both `TCP_NODELAY`.
fn loopback_pair() -> Result<(TcpStream, TcpStream), BaselineError> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .map_err(io("bind 127.0.0.1:0"))?;
    let addr = listener.local_addr().map_err(io("local_addr"))?;
    let client = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(io("connect"))?;
    let (server, _) = listener.accept().map_err(io("accept"))?;
    for stream in [&client, &server] {
        stream.set_nodelay(true).map_err(io("set TCP_NODELAY"))?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .map_err(io("set the read timeout"))?;
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(io("set the write timeout"))?;
    }
    Ok((client, server))
}

/// Longest pause between two paced pings.
pub const PING_INTERVAL_MAX: Duration = Duration::from_secs(1);

/// Times `round_trips` back-to-back ping-pongs of `ping_bytes` on one connection.
pub fn round_trip(round_trips: usize, ping_bytes: usize) -> Result<RoundTrip, BaselineError> {
    round_trip_paced(round_trips, ping_bytes, Duration::ZERO)
}

/// Times `round_trips` ping-pongs of `ping_bytes` on one connection, sleeping `interval`
/// before each (the sleep is not timed).
pub fn round_trip_paced(
    round_trips: usize,
    ping_bytes: usize,
    interval: Duration,
) -> Result<RoundTrip, BaselineError> {
    if interval > PING_INTERVAL_MAX {
        return Err(BaselineError::Option(format!(
            "the pause between pings must be at most {PING_INTERVAL_MAX:?} (got {interval:?})"
        )));
    }
    if !(1..=ROUND_TRIPS_MAX).contains(&round_trips) || !(1..=PING_BYTES_MAX).contains(&ping_bytes)
    {
        return Err(BaselineError::Option(format!(
            "round trips must be 1..={ROUND_TRIPS_MAX} and the ping 1..={PING_BYTES_MAX} bytes \
             (got {round_trips} and {ping_bytes})"
        )));
    }
    let (mut client, mut server) = loopback_pair()?;
    // The echo thread answers exactly `round_trips` pings, then returns.
    let echo = thread::spawn(move || -> std::io::Result<()> {
        let mut buffer = vec![0u8; ping_bytes];
        for _ in 0..round_trips {
            server.read_exact(&mut buffer)?;
            server.write_all(&buffer)?;
        }
        Ok(())
    });
    let request = vec![0x5au8; ping_bytes];
    let mut answer = vec![0u8; ping_bytes];
    let mut samples_ns = Vec::with_capacity(round_trips);
    let mut outcome = Ok(());
    for _ in 0..round_trips {
        if !interval.is_zero() {
            thread::sleep(interval);
        }
        let started = Instant::now();
        if let Err(error) = client
            .write_all(&request)
            .and_then(|()| client.read_exact(&mut answer))
        {
            outcome = Err(error);
            break;
        }
        samples_ns.push(started.elapsed().as_nanos());
    }
    // Closing our end ends an echo thread still waiting for a ping.
    drop(client);
    let echoed = echo.join().map_err(|_| BaselineError::Thread("echo"))?;
    outcome.map_err(io("ping-pong"))?;
    echoed.map_err(io("echo"))?;
    Ok(summarize(&mut samples_ns))
}

#[allow(clippy::cast_precision_loss)] // nanosecond samples and counts far below 2^52
fn summarize(samples_ns: &mut [u128]) -> RoundTrip {
    samples_ns.sort_unstable();
    let count = samples_ns.len();
    // The sample at rank ceil(count * permille / 1000), the nearest-rank percentile.
    let at = |permille: usize| {
        let rank = count
            .saturating_mul(permille)
            .div_ceil(1000)
            .clamp(1, count);
        samples_ns[rank - 1] as f64 / 1000.0
    };
    let total: u128 = samples_ns.iter().sum();
    RoundTrip {
        count,
        p50_us: at(500),
        p99_us: at(990),
        mean_us: total as f64 / count as f64 / 1000.0,
        min_us: samples_ns[0] as f64 / 1000.0,
    }
}

/// Streams `message_bytes` messages for `duration` on one connection (writer and reader
/// threads) and reports what the reader received.
#[allow(clippy::cast_precision_loss)] // byte counts far below 2^52
pub fn throughput(duration: Duration, message_bytes: usize) -> Result<Throughput, BaselineError> {
    if duration.is_zero() || duration > STREAM_DURATION_MAX || message_bytes == 0 {
        return Err(BaselineError::Option(format!(
            "the stream must last 0..{STREAM_DURATION_MAX:?} and a message be at least one byte"
        )));
    }
    let (mut writer_end, mut reader_end) = loopback_pair()?;
    let started = Instant::now();
    let reader = thread::spawn(move || -> std::io::Result<u64> {
        let mut buffer = vec![0u8; STREAM_CHUNK_BYTES];
        let mut received = 0u64;
        loop {
            match reader_end.read(&mut buffer)? {
                0 => return Ok(received),
                read => received += read as u64,
            }
        }
    });
    // Whole messages per write, as a batching sender would hand them to the kernel.
    let chunk = vec![0xa5u8; (STREAM_CHUNK_BYTES / message_bytes).max(1) * message_bytes];
    let mut written = Ok(());
    while started.elapsed() < duration {
        if let Err(error) = writer_end.write_all(&chunk) {
            written = Err(error);
            break;
        }
    }
    // Closing the writer ends the reader once it has read everything.
    drop(writer_end);
    let received = reader.join().map_err(|_| BaselineError::Thread("reader"))?;
    let elapsed = started.elapsed();
    written.map_err(io("stream write"))?;
    let bytes = received.map_err(io("stream read"))?;
    let seconds = elapsed.as_secs_f64();
    Ok(Throughput {
        bytes,
        elapsed,
        bytes_per_second: bytes as f64 / seconds,
        messages_per_second: bytes as f64 / message_bytes as f64 / seconds,
        message_bytes,
    })
}

impl Baseline {
    /// A small table, one measurement per line.
    pub fn table(&self) -> String {
        let rtt = &self.round_trip;
        let mut text = format!(
            "loopback TCP baseline (std blocking sockets, TCP_NODELAY, one connection)\n\
             round trip   n {:>8}  p50 {:>7.1} us  p99 {:>7.1} us  mean {:>7.1} us  min {:>6.1} us\n",
            rtt.count, rtt.p50_us, rtt.p99_us, rtt.mean_us, rtt.min_us
        );
        if let Some(stream) = &self.throughput {
            // Writing to a String cannot fail.
            let _ = writeln!(
                text,
                "streaming    {:>8.1} MB/s  {:>12.0} msgs/s of {} bytes  over {:.2}s",
                stream.bytes_per_second / 1e6,
                stream.messages_per_second,
                stream.message_bytes,
                stream.elapsed.as_secs_f64()
            );
        }
        text
    }

    /// The measurements as a JSON object (no dependency on a JSON crate: flat numbers).
    pub fn to_json(&self) -> String {
        let rtt = &self.round_trip;
        let stream = self.throughput.map_or_else(
            || "null".to_owned(),
            |stream| {
                format!(
                    "{{\"bytes\":{},\"seconds\":{:.6},\"bytes_per_second\":{:.1},\
                     \"messages_per_second\":{:.1},\"message_bytes\":{}}}",
                    stream.bytes,
                    stream.elapsed.as_secs_f64(),
                    stream.bytes_per_second,
                    stream.messages_per_second,
                    stream.message_bytes
                )
            },
        );
        format!(
            "{{\"socket\":\"std blocking, TCP_NODELAY, 127.0.0.1\",\
             \"round_trip\":{{\"count\":{},\"p50_us\":{:.2},\"p99_us\":{:.2},\"mean_us\":{:.2},\"min_us\":{:.2}}},\
             \"throughput\":{stream}}}",
            rtt.count, rtt.p50_us, rtt.p99_us, rtt.mean_us, rtt.min_us
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_percentiles_are_ordered_and_positive() {
        let rtt = round_trip(2000, 16).expect("loopback round trip");
        assert_eq!(rtt.count, 2000);
        assert!(rtt.min_us > 0.0, "{rtt:?}");
        assert!(
            rtt.min_us <= rtt.p50_us && rtt.p50_us <= rtt.p99_us,
            "{rtt:?}"
        );
        assert!(rtt.mean_us >= rtt.min_us, "{rtt:?}");
        // A loopback round trip over a second means the measurement is broken.
        assert!(rtt.p50_us < 1_000_000.0, "{rtt:?}");
    }

    #[test]
    fn paced_round_trips_are_timed_without_the_pause() {
        let rtt = round_trip_paced(20, 16, Duration::from_millis(5)).expect("paced");
        assert_eq!(rtt.count, 20);
        assert!(rtt.min_us > 0.0, "{rtt:?}");
        // The 5 ms pause is outside the timed part.
        assert!(rtt.p50_us < 5000.0, "{rtt:?}");
    }

    #[test]
    fn streaming_moves_bytes() {
        let stream = throughput(Duration::from_millis(200), 100).expect("loopback stream");
        assert!(stream.bytes > 0, "{stream:?}");
        assert!(stream.bytes_per_second > 0.0, "{stream:?}");
        let ratio = stream.bytes_per_second / stream.messages_per_second;
        assert!((ratio - 100.0).abs() < 1e-6, "{stream:?}");
    }

    #[test]
    fn summary_of_known_samples() {
        let mut samples: Vec<u128> = (1..=100).map(|us| us * 1000).collect();
        let rtt = summarize(&mut samples);
        assert!((rtt.p50_us - 50.0).abs() < 1e-9, "{rtt:?}");
        assert!((rtt.p99_us - 99.0).abs() < 1e-9, "{rtt:?}");
        assert!((rtt.mean_us - 50.5).abs() < 1e-9, "{rtt:?}");
        assert!((rtt.min_us - 1.0).abs() < 1e-9, "{rtt:?}");
    }

    #[test]
    fn out_of_range_options_are_refused() {
        assert!(matches!(round_trip(0, 16), Err(BaselineError::Option(_))));
        assert!(matches!(round_trip(10, 0), Err(BaselineError::Option(_))));
        assert!(matches!(
            round_trip_paced(10, 16, Duration::from_secs(2)),
            Err(BaselineError::Option(_))
        ));
        assert!(matches!(
            throughput(Duration::ZERO, 100),
            Err(BaselineError::Option(_))
        ));
    }
}

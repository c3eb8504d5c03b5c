//! A run's report: the full configuration and every figure, as JSON (so a run can be
//! reproduced and compared later), as a text table, and the latency distributions as
//! HdrHistogram `.hgrm` percentile files.

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::baseline::{Baseline, BaselineOptions};
use crate::target::{BenchError, MemberStatsRow};
use crate::workload::Workload;

/// The report format's version, bumped when a field changes meaning.
pub const REPORT_FORMAT: u32 = 1;

/// Everything that decides a run: enough to run it again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// `in-process` or `connect`.
    pub target: String,
    /// In-process: members of the group.
    pub members: usize,
    /// Connect: the servers' RESP addresses.
    pub connect: Vec<String>,
    /// The members' `log_sync` (`batch`, `interval:<ms>`, `none`; as declared for
    /// servers reached over RESP).
    pub log_sync: String,
    /// The members' `io_backend` (as declared for servers reached over RESP).
    pub io_backend: String,
    /// `single` (single-primary: clients go to the primary) or `multi`.
    pub mode: String,
    /// The consistency level asked for (`None`: the members' default; reports written
    /// before levels existed have none either).
    #[serde(default)]
    pub consistency: Option<String>,
    /// The transactions' isolation: `command` (a command-style transaction checks the
    /// keys it reads; blind writes are never checked).
    pub isolation: String,
    /// What each operation does.
    pub workload: Workload,
    /// How keys are chosen (`uniform`, `zipf:<theta>`, `hotset:<keys>:<probability>`).
    pub distribution: String,
    /// Keys addressed (widened to a larger hot set).
    pub keys: u64,
    /// Accounts per transfer.
    pub txn_keys: usize,
    /// Bytes per written value.
    pub value_size: usize,
    /// Mixed workload: probability of a read.
    pub read_ratio: f64,
    /// Client threads.
    pub clients: usize,
    /// Measured window, seconds.
    pub duration_s: f64,
    /// Unrecorded warmup before it, seconds.
    pub warmup_s: f64,
    /// Open loop at this many operations per second; closed loop when absent.
    pub rate: Option<f64>,
    /// `all` (clients spread over every member) or `first`.
    pub send_to: String,
    /// The clients' RNG seed.
    pub seed: u64,
    /// In-process: runs of a conflicted command after the first.
    pub autocommit_retries: u32,
    /// In-process: local chaining.
    pub chaining: bool,
}

/// Latency percentiles, microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th.
    pub p99: u64,
    /// 99.9th.
    pub p999: u64,
    /// 99.99th.
    pub p9999: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of `histogram` (all zero when it is empty).
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: histogram.len(),
            mean: histogram.mean(),
            p50: histogram.value_at_quantile(0.5),
            p90: histogram.value_at_quantile(0.9),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            p9999: histogram.value_at_quantile(0.9999),
            max: histogram.max(),
        }
    }
}

/// The loopback baseline measured at the start of a run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineFigures {
    /// Round trip median, microseconds.
    pub round_trip_p50_us: f64,
    /// Round trip 99th percentile, microseconds.
    pub round_trip_p99_us: f64,
    /// Streaming throughput, 100-byte messages per second.
    pub stream_messages_per_s: f64,
    /// Streaming throughput, bytes per second.
    pub stream_bytes_per_s: f64,
}

impl BaselineFigures {
    /// Measures a short baseline (5000 round trips, half a second of streaming).
    pub fn measure() -> Result<BaselineFigures, BenchError> {
        let options = BaselineOptions {
            round_trips: 5000,
            ping_bytes: 16,
            stream_duration: std::time::Duration::from_millis(500),
            message_bytes: 100,
        };
        let Baseline {
            round_trip,
            throughput,
        } = crate::baseline::measure(&options)?;
        Ok(BaselineFigures {
            round_trip_p50_us: round_trip.p50_us,
            round_trip_p99_us: round_trip.p99_us,
            stream_messages_per_s: throughput.map_or(0.0, |t| t.messages_per_second),
            stream_bytes_per_s: throughput.map_or(0.0, |t| t.bytes_per_second),
        })
    }
}

/// The transfer workload's check: the sum of all accounts is conserved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferCheck {
    /// Accounts summed.
    pub accounts: u64,
    /// The sum before the run (the same on every member).
    pub expected: i64,
    /// The sum after the run, per member.
    pub observed: Vec<i64>,
    /// Every member holds the expected sum.
    pub conserved: bool,
}

/// One run's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_FORMAT`].
    pub format: u32,
    /// The tutti version that measured it.
    pub tutti_version: String,
    /// When the run started, seconds since the Unix epoch.
    pub started_unix_s: u64,
    /// What was measured.
    pub target: String,
    /// The configuration.
    pub config: RunConfig,
    /// The loopback baseline measured at the start of the run.
    pub baseline: Option<BaselineFigures>,
    /// The measured window, seconds.
    pub elapsed_s: f64,
    /// Operations committed in the window (reads included).
    pub committed: u64,
    /// Of which reads.
    pub reads: u64,
    /// Operations aborted (conflicts left after the target's retries).
    pub aborted: u64,
    /// Operations failed (errors other than conflicts).
    pub failed: u64,
    /// Runs retried inside the target.
    pub retries: u64,
    /// Open loop: operations due in the window but never sent.
    pub unsent: u64,
    /// Commits per second.
    pub committed_per_s: f64,
    /// Aborts per second.
    pub aborted_per_s: f64,
    /// Aborts over commits and aborts.
    pub abort_rate: f64,
    /// Commit latency, microseconds (open loop: from the intended start).
    pub commit_latency_us: Percentiles,
    /// Abort latency, microseconds.
    pub abort_latency_us: Percentiles,
    /// Open loop: commit latency from the actual send.
    pub commit_latency_from_send_us: Option<Percentiles>,
    /// Member stats before the run.
    pub members_before: Vec<MemberStatsRow>,
    /// Member stats after it (once the members converged).
    pub members_after: Vec<MemberStatsRow>,
    /// The transfer workload's conservation check.
    pub transfer_check: Option<TransferCheck>,
    /// The first failure's message, when any failed.
    pub first_failure: Option<String>,
}

impl Report {
    /// Reads a report written by `--json`.
    pub fn load(path: &Path) -> Result<Report, BenchError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            BenchError::Report(format!("cannot read {}: {error}", path.display()))
        })?;
        serde_json::from_str(&text).map_err(|error| {
            BenchError::Report(format!(
                "{} is not a tutti bench report: {error}",
                path.display()
            ))
        })
    }

    /// Writes the report as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), BenchError> {
        let text = serde_json::to_string_pretty(self).expect("a report serializes");
        std::fs::write(path, text + "\n").map_err(|error| {
            BenchError::Report(format!("cannot write {}: {error}", path.display()))
        })
    }

    /// The run passed its checks (the transfer total, when there is one).
    pub fn checks_passed(&self) -> bool {
        self.transfer_check
            .as_ref()
            .is_none_or(|check| check.conserved)
    }

    /// One line naming what was run.
    pub fn headline(&self) -> String {
        let config = &self.config;
        let loop_kind = config.rate.map_or_else(
            || "closed loop".to_owned(),
            |rate| format!("open loop at {rate}/s"),
        );
        format!(
            "{} {} over {} keys ({}), {} clients, {loop_kind}, {}s after {}s warmup; {}; \
             log_sync {}, io {}, mode {}, consistency {}, isolation {}, send to {}",
            config.workload,
            if config.workload == Workload::Transfer {
                format!("of {} accounts", config.txn_keys)
            } else {
                String::new()
            },
            config.keys,
            config.distribution,
            config.clients,
            config.duration_s,
            config.warmup_s,
            self.target,
            config.log_sync,
            config.io_backend,
            config.mode,
            config.consistency.as_deref().unwrap_or("default"),
            config.isolation,
            config.send_to,
        )
    }

    /// The report as a text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.headline());
        let _ = writeln!(
            out,
            "committed/s {:.0}  aborted/s {:.0}  abort rate {:.2}%  committed {}  aborted {}  \
             failed {}  retries {}  reads {}  unsent {}",
            self.committed_per_s,
            self.aborted_per_s,
            self.abort_rate * 100.0,
            self.committed,
            self.aborted,
            self.failed,
            self.retries,
            self.reads,
            self.unsent
        );
        let _ = writeln!(
            out,
            "{:<22} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
            "latency (us)", "p50", "p90", "p99", "p99.9", "p99.99", "max", "count"
        );
        let mut rows = vec![("commits", self.commit_latency_us)];
        if let Some(from_send) = self.commit_latency_from_send_us {
            rows.push(("commits (from send)", from_send));
        }
        rows.push(("aborts", self.abort_latency_us));
        for (name, p) in rows {
            let _ = writeln!(
                out,
                "{name:<22} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
                p.p50, p.p90, p.p99, p.p999, p.p9999, p.max, p.count
            );
        }
        if let Some(baseline) = &self.baseline {
            let rtt = baseline.round_trip_p50_us.max(0.001);
            #[allow(clippy::cast_precision_loss)] // latencies far below 2^52
            let multiple = |value: u64| value as f64 / rtt;
            let p = self.commit_latency_us;
            let _ = writeln!(
                out,
                "loopback baseline: round trip p50 {:.1} us, p99 {:.1} us; streaming {:.0} \
                 msg/s; commit latency / loopback round trip p50: p50 {:.0}x, p99 {:.0}x, \
                 max {:.0}x",
                baseline.round_trip_p50_us,
                baseline.round_trip_p99_us,
                baseline.stream_messages_per_s,
                multiple(p.p50),
                multiple(p.p99),
                multiple(p.max)
            );
        }
        if let Some(check) = &self.transfer_check {
            let _ = writeln!(
                out,
                "transfer check: {} accounts, total before {}, after {:?}: {}",
                check.accounts,
                check.expected,
                check.observed,
                if check.conserved {
                    "conserved"
                } else {
                    "BROKEN"
                }
            );
        }
        if let Some(failure) = &self.first_failure {
            let _ = writeln!(out, "first failure: {failure}");
        }
        out.push_str(&member_stats_table(
            &self.members_before,
            &self.members_after,
        ));
        out
    }
}

/// The member stats before and after, one row per member: the columns that moved.
fn member_stats_table(before: &[MemberStatsRow], after: &[MemberStatsRow]) -> String {
    const COLUMNS: [(&str, &str); 6] = [
        ("COUNT_TRANSACTIONS_CHECKED", "checked"),
        ("COUNT_CONFLICTS_DETECTED", "conflicts"),
        ("COUNT_TRANSACTIONS_LOCAL_PROPOSED", "local_proposed"),
        ("COUNT_TRANSACTIONS_LOCAL_ROLLBACK", "local_rollback"),
        ("COUNT_TRANSACTIONS_REMOTE_APPLIED", "remote_applied"),
        ("COUNT_TRANSACTIONS_ROWS_VALIDATING", "rows_validating"),
    ];
    if after.is_empty() {
        return String::new();
    }
    let mut out = String::from("member stats, before -> after:\n");
    for row in after {
        let previous = before.iter().find(|b| b.member == row.member);
        let _ = write!(out, "  {}", row.member);
        for (column, short) in COLUMNS {
            let now = row.get(column).unwrap_or(0);
            let then = previous.and_then(|p| p.get(column)).unwrap_or(0);
            let _ = write!(out, "  {short} {then}->{now}");
        }
        out.push('\n');
    }
    out
}

/// Writes `histogram` (microseconds) as an HdrHistogram percentile distribution, the
/// `.hgrm` text of `HistogramLogProcessor` and `outputPercentileDistribution`, values
/// in milliseconds (output value unit scaling ratio 1000), five ticks per half distance.
pub fn hgrm(histogram: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if !histogram.is_empty() {
        #[allow(clippy::cast_precision_loss)] // latencies far below 2^52
        for step in histogram.iter_quantiles(5) {
            let value = step.value_iterated_to() as f64 / 1000.0;
            let quantile = step.quantile_iterated_to();
            if quantile < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:>12.3} {quantile:>14.12} {:>10} {:>14.2}",
                    step.count_since_last_iteration(),
                    1.0 / (1.0 - quantile)
                );
            } else {
                let _ = writeln!(
                    out,
                    "{value:>12.3} {quantile:>14.12} {:>10}",
                    step.count_since_last_iteration()
                );
            }
        }
    }
    #[allow(clippy::cast_precision_loss)] // latencies far below 2^52
    let (mean, deviation, max) = (
        histogram.mean() / 1000.0,
        histogram.stdev() / 1000.0,
        histogram.max() as f64 / 1000.0,
    );
    let _ = writeln!(
        out,
        "#[Mean    = {mean:>12.3}, StdDeviation   = {deviation:>12.3}]\n\
         #[Max     = {max:>12.3}, Total count    = {:>12}]\n\
         #[Buckets = {:>12}, SubBuckets     = {:>12}]",
        histogram.len(),
        histogram.buckets(),
        histogram.distinct_values()
    );
    out
}

/// Reads one percentile out of a summary.
type PercentilePick = fn(&Percentiles) -> u64;

/// A side-by-side table of two reports, with the ratio B / A of every figure.
#[allow(clippy::cast_precision_loss)] // counts and microseconds far below 2^52
pub fn compare(a: &Report, b: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "A: {}", a.headline());
    let _ = writeln!(out, "B: {}", b.headline());
    let _ = writeln!(out, "{:<26} {:>14} {:>14} {:>8}", "figure", "A", "B", "B/A");
    let mut rows: Vec<(String, f64, f64)> = vec![
        (
            "committed/s".to_owned(),
            a.committed_per_s,
            b.committed_per_s,
        ),
        ("aborted/s".to_owned(), a.aborted_per_s, b.aborted_per_s),
        (
            "abort rate %".to_owned(),
            a.abort_rate * 100.0,
            b.abort_rate * 100.0,
        ),
        ("failed".to_owned(), a.failed as f64, b.failed as f64),
    ];
    let commit: [(&str, PercentilePick); 6] = [
        ("p50", |p| p.p50),
        ("p90", |p| p.p90),
        ("p99", |p| p.p99),
        ("p99.9", |p| p.p999),
        ("p99.99", |p| p.p9999),
        ("max", |p| p.max),
    ];
    for (label, pick) in commit {
        rows.push((
            format!("commit {label} us"),
            pick(&a.commit_latency_us) as f64,
            pick(&b.commit_latency_us) as f64,
        ));
    }
    for (label, pick) in [commit[0], commit[2]] {
        rows.push((
            format!("abort {label} us"),
            pick(&a.abort_latency_us) as f64,
            pick(&b.abort_latency_us) as f64,
        ));
    }
    rows.push((
        "loopback rtt p50 us".to_owned(),
        a.baseline.map_or(0.0, |x| x.round_trip_p50_us),
        b.baseline.map_or(0.0, |x| x.round_trip_p50_us),
    ));
    for (name, x, y) in rows {
        let ratio = if x == 0.0 {
            "-".to_owned()
        } else {
            format!("{:.2}", y / x)
        };
        let _ = writeln!(out, "{name:<26} {x:>14.1} {y:>14.1} {ratio:>8}");
    }
    let differences = config_differences(&a.config, &b.config);
    if differences.is_empty() {
        out.push_str("configurations: identical\n");
    } else {
        let _ = writeln!(out, "configurations differ: {}", differences.join(", "));
    }
    out
}

/// The configuration fields that differ, as `name: A -> B`.
fn config_differences(a: &RunConfig, b: &RunConfig) -> Vec<String> {
    let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (
        serde_json::to_value(a).expect("config serializes"),
        serde_json::to_value(b).expect("config serializes"),
    ) else {
        return Vec::new();
    };
    a.iter()
        .filter_map(|(name, value)| {
            let other = b.get(name).unwrap_or(&serde_json::Value::Null);
            (other != value).then(|| format!("{name}: {value} -> {other}"))
        })
        .collect()
}

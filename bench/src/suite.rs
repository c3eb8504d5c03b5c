//! One benchmark run from start to report, and sweeps of runs over contention points.
//!
//! A run: validate the configuration, read the member stats (and, for transfers, the
//! total of all accounts), drive the clients ([`crate::driver`]), let the members
//! converge, read the stats and the total again, and assemble the [`Report`]. A sweep
//! repeats the same run with the key distribution set to each contention point.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::driver::{drive, DriverOptions, Live, Measured};
use crate::keys::{Distribution, KeyChooser};
use crate::report::{
    BaselineFigures, Percentiles, Report, RunConfig, TransferCheck, REPORT_FORMAT,
};
use crate::target::{BenchError, Target};
use crate::workload::{OperationSource, Workload, TXN_KEYS_MAX, VALUE_SIZE_MAX};

/// How long the transfer check waits for the members to agree on the total.
const SUM_WAIT: Duration = Duration::from_secs(30);
/// Longest measured window or warmup.
pub const DURATION_MAX: Duration = Duration::from_secs(24 * 3600);

/// A finished run: the report and the histograms behind its percentiles.
pub struct RunResult {
    /// The report.
    pub report: Report,
    /// The recorded histograms.
    pub measured: Measured,
}

/// Checks a configuration; returns its key distribution.
pub fn validate(config: &RunConfig) -> Result<Distribution, BenchError> {
    let options = |message: String| Err(BenchError::Options(message));
    if !matches!(config.mode.as_str(), "single" | "multi") {
        return options(format!(
            "--mode {:?} is invalid: use single or multi",
            config.mode
        ));
    }
    if let Some(level) = &config.consistency {
        level
            .parse::<tutti_engine::consistency::Consistency>()
            .map_err(|reason| BenchError::Options(format!("--consistency: {reason}")))?;
    }
    let distribution: Distribution = config.distribution.parse().map_err(BenchError::Options)?;
    if config.value_size > VALUE_SIZE_MAX {
        return options(format!(
            "--value-size {} is too large: at most {VALUE_SIZE_MAX}",
            config.value_size
        ));
    }
    if !(0.0..=1.0).contains(&config.read_ratio) {
        return options(format!(
            "--read-ratio {} is invalid: use 0..=1",
            config.read_ratio
        ));
    }
    if config.workload == Workload::Transfer {
        if !(2..=TXN_KEYS_MAX).contains(&config.txn_keys) {
            return options(format!(
                "--txn-keys {} is out of range: a transfer touches 2..={TXN_KEYS_MAX} accounts",
                config.txn_keys
            ));
        }
        let support = distribution.support(config.keys);
        if support < config.txn_keys as u64 {
            return options(format!(
                "a transfer needs {} distinct accounts but {} can only name {support}",
                config.txn_keys, config.distribution
            ));
        }
    }
    for (name, seconds) in [("duration", config.duration_s), ("warmup", config.warmup_s)] {
        if !(seconds.is_finite() && (0.0..=DURATION_MAX.as_secs_f64()).contains(&seconds)) {
            return options(format!("--{name} {seconds}s is out of range"));
        }
    }
    if config.duration_s <= 0.0 {
        return options("--duration must be longer than 0".to_owned());
    }
    Ok(distribution)
}

/// The per-member sums of `keys`, once two reads in a row agree on every member (or
/// [`SUM_WAIT`] passed: then the last read).
fn stable_sums(target: &dyn Target, keys: &[Vec<u8>]) -> Result<Vec<i64>, BenchError> {
    let deadline = Instant::now() + SUM_WAIT;
    let mut last = target.sums(keys)?;
    loop {
        let now = target.sums(keys)?;
        let agreed = now == last && now.windows(2).all(|pair| pair[0] == pair[1]);
        if agreed || Instant::now() > deadline {
            return Ok(now);
        }
        last = now;
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs one benchmark against `target`.
pub fn run(
    target: &dyn Target,
    config: &RunConfig,
    baseline: Option<BaselineFigures>,
    observe: &mut dyn FnMut(&Live),
) -> Result<RunResult, BenchError> {
    let distribution = validate(config)?;
    let chooser = KeyChooser::new(distribution, config.keys).map_err(BenchError::Options)?;
    let source = OperationSource::new(
        config.workload,
        chooser,
        config.txn_keys,
        config.value_size,
        config.read_ratio,
    );
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let members_before = target.member_stats();
    let accounts = (config.workload == Workload::Transfer).then(|| source.all_keys());
    let expected = match &accounts {
        Some(keys) => {
            let sums = stable_sums(target, keys)?;
            if sums.windows(2).any(|pair| pair[0] != pair[1]) {
                return Err(BenchError::Settle(format!(
                    "the members disagree on the accounts' total before the run: {sums:?}"
                )));
            }
            sums.first().copied()
        }
        None => None,
    };
    let options = DriverOptions {
        clients: config.clients,
        duration: Duration::from_secs_f64(config.duration_s),
        warmup: Duration::from_secs_f64(config.warmup_s),
        rate: config.rate,
        seed: config.seed,
    };
    let measured = drive(target, &source, &options, observe)?;
    target.settle()?;
    let transfer_check = match (&accounts, expected) {
        (Some(keys), Some(expected)) => {
            let observed = stable_sums(target, keys)?;
            Some(TransferCheck {
                accounts: keys.len() as u64,
                expected,
                conserved: observed.iter().all(|&sum| sum == expected),
                observed,
            })
        }
        _ => None,
    };
    let members_after = target.member_stats();
    let seconds = measured.elapsed.as_secs_f64().max(1e-9);
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let (committed, aborted) = (measured.committed as f64, measured.aborted as f64);
    let report = Report {
        format: REPORT_FORMAT,
        tutti_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_unix_s,
        target: target.describe(),
        config: config.clone(),
        baseline,
        elapsed_s: seconds,
        committed: measured.committed,
        reads: measured.reads,
        aborted: measured.aborted,
        failed: measured.failed,
        retries: measured.retries,
        unsent: measured.unsent,
        committed_per_s: committed / seconds,
        aborted_per_s: aborted / seconds,
        abort_rate: if committed + aborted > 0.0 {
            aborted / (committed + aborted)
        } else {
            0.0
        },
        commit_latency_us: Percentiles::of(&measured.commit_latency),
        abort_latency_us: Percentiles::of(&measured.abort_latency),
        commit_latency_from_send_us: measured
            .commit_latency_from_send
            .as_ref()
            .map(Percentiles::of),
        members_before,
        members_after,
        transfer_check,
        first_failure: measured.first_failure.clone(),
    };
    Ok(RunResult { report, measured })
}

/// Parses a sweep's contention points: `hotset:10,100,1000` (every operation on a hot
/// set of that many keys) or `zipf:0.5,0.9,0.99`.
pub fn contention_points(text: &str) -> Result<Vec<Distribution>, BenchError> {
    let invalid = || {
        BenchError::Options(format!(
            "--contention {text:?} is invalid: use hotset:<keys>,<keys>,... (e.g. \
             hotset:10,100,1000) or zipf:<theta>,<theta>,... (e.g. zipf:0.5,0.9,0.99)"
        ))
    };
    let (kind, values) = text.trim().split_once(':').ok_or_else(invalid)?;
    let points: Result<Vec<Distribution>, BenchError> = values
        .split(',')
        .map(|value| {
            let spec = match kind {
                "hotset" => format!("hotset:{}:1", value.trim()),
                "zipf" => format!("zipf:{}", value.trim()),
                _ => return Err(invalid()),
            };
            spec.parse().map_err(|_| invalid())
        })
        .collect();
    let points = points?;
    if points.is_empty() {
        return Err(invalid());
    }
    Ok(points)
}

/// The label of a contention point in tables and plots.
pub fn point_label(point: &Distribution) -> String {
    match point {
        Distribution::HotSet { keys, .. } => format!("hot {keys}"),
        Distribution::Zipf { theta } => format!("zipf {theta}"),
        Distribution::Uniform => "uniform".to_owned(),
    }
}

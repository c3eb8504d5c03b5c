//! `tutti bench`: the benchmark suite's subcommands (DESIGN.md section 14).
//!
//! - `tutti bench run`: one workload against an in-process group (`--members N`) or
//!   running servers (`--connect host:port,...` over RESP), closed or open loop; prints
//!   the loopback baseline, committed/s, aborts, latency percentiles and member stats,
//!   and writes `--json`, `--hgrm` and `--svg` files.
//! - `tutti bench sweep --contention hotset:10,100,...`: the same run over each
//!   contention point (and each of several workloads, `--repeat` times), as a table and
//!   a plot of throughput, abort rate and p99 against contention.
//! - `tutti bench compare A.json B.json`: two reports side by side, with ratios.
//! - `tutti bench baseline`: the loopback TCP round trip and streaming throughput of this
//!   machine (`tutti_bench::baseline`), as a small table and optionally as JSON.
//! - `tutti bench hot-key`: clients incrementing one counter through an in-process group
//!   (`tutti_bench::hot_key`), with local chaining on and then off in the same run, and
//!   the ratio of their commit rates.
//!
//! This module only parses options and prints; the measurements live in `tutti_bench`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tutti_bench::baseline::{self, BaselineOptions};
use tutti_bench::driver::Live;
use tutti_bench::hot_key::{self, HotKeyOptions, HotKeyResult};
use tutti_bench::in_process::{GroupSpec, InProcessTarget};
use tutti_bench::keys::Distribution;
use tutti_bench::plot::{self, SweepSeries};
use tutti_bench::report::{self, BaselineFigures, Report, RunConfig};
use tutti_bench::resp_target::RespTarget;
use tutti_bench::suite::{self, RunResult};
use tutti_bench::target::{BenchError, Target};
use tutti_bench::workload::Workload;
use tutti_engine::consistency::Consistency;
use tutti_engine::member::AUTOCOMMIT_RETRIES_DEFAULT;
use tutti_net::transport::runtime::IoBackend;
use tutti_storage::log::SyncPolicy;

/// `tutti bench` options.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Which benchmark.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// One workload against an in-process group or running servers.
    Run(Box<RunArgs>),
    /// The same workload over several contention points.
    Sweep(Box<SweepArgs>),
    /// Two `--json` reports side by side, with ratios.
    Compare(CompareArgs),
    /// Loopback TCP round trip and streaming throughput (the physical floor).
    Baseline(BaselineArgs),
    /// One counter incremented by many clients, local chaining on versus off.
    HotKey(HotKeyArgs),
}

/// What to run and against what (shared by `run` and `sweep`).
#[derive(Args, Debug, Clone)]
pub struct WorkloadArgs {
    /// Members of the in-process group (ignored with --connect).
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    /// Measure running servers instead: RESP addresses, host:port,host:port,...
    #[arg(long)]
    pub connect: Option<String>,
    /// The members' `log_sync`: batch, interval:<ms> or none (with --connect: declared,
    /// recorded in the report as given).
    #[arg(long)]
    pub log_sync: Option<String>,
    /// The members' `io_backend`: auto, uring or epoll (with --connect: declared).
    #[arg(long)]
    pub io_backend: Option<String>,
    /// Group mode: multi (every member takes writes) or single (one elected primary
    /// does; in-process clients all go to it; with --connect, list the primary first and
    /// use --send-to first).
    #[arg(long, default_value = "multi")]
    pub mode: String,
    /// Consistency level of every transaction: EVENTUAL, `BEFORE_ON_PRIMARY_FAILOVER` or
    /// BEFORE (default: the members'; with --connect each session sends CLIENT
    /// CONSISTENCY).
    #[arg(long)]
    pub consistency: Option<String>,
    /// write (blind SET), rmw (INCR), transfer (multi-key, conserved total) or mixed;
    /// sweep takes a comma-separated list.
    #[arg(long, default_value = "write")]
    pub workload: String,
    /// Keys addressed.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// uniform, zipf:<theta> or hotset:<keys>:<probability>.
    #[arg(long, default_value = "uniform")]
    pub distribution: String,
    /// Accounts per transfer (2..=64).
    #[arg(long, default_value_t = 2)]
    pub txn_keys: usize,
    /// Bytes per written value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Mixed workload: probability of a read.
    #[arg(long, default_value_t = 0.5)]
    pub read_ratio: f64,
    /// Client threads (one session each).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Measured window, for example 10s.
    #[arg(long, default_value = "10s")]
    pub duration: String,
    /// Unrecorded warmup before it.
    #[arg(long, default_value = "2s")]
    pub warmup: String,
    /// Open loop at this many operations per second over all clients (latency from the
    /// intended start); closed loop when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// all (clients spread over every member) or first.
    #[arg(long, default_value = "all")]
    pub send_to: String,
    /// Seed of the clients' key choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// In-process: runs of a conflicted command after the first.
    #[arg(long, default_value_t = AUTOCOMMIT_RETRIES_DEFAULT)]
    pub autocommit_retries: u32,
    /// Each member in its own network namespace behind tc netem: <delay>[,<loss>].
    #[arg(long)]
    pub netem: Option<String>,
    /// Skip the loopback baseline measured at the start of each run.
    #[arg(long)]
    pub no_baseline: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `tutti bench run` options.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The workload and target.
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Write the commit latency distribution (HdrHistogram .hgrm text) to this file, and
    /// the aborts' beside it (<stem>.aborts.hgrm) when any aborted.
    #[arg(long)]
    pub hgrm: Option<PathBuf>,
    /// Write the report (every figure and the full configuration) as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Plot latency by percentile (SVG).
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

/// `tutti bench sweep` options.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The workload(s) and target.
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// The contention points: hotset:<keys>,<keys>,... (every operation on the hot set)
    /// or zipf:<theta>,<theta>,...
    #[arg(long)]
    pub contention: String,
    /// Runs of each point (to show how consistent the numbers are).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Write every run's report as one JSON document.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Plot throughput, abort rate and p99 against contention (SVG).
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

/// `tutti bench compare` options.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The first report (A).
    pub a: PathBuf,
    /// The second report (B); ratios are B / A.
    pub b: PathBuf,
}

/// `tutti bench hot-key` options.
#[derive(Args, Debug)]
pub struct HotKeyArgs {
    /// Members of the in-process group.
    #[arg(long, default_value_t = 1)]
    pub members: usize,
    /// Client threads.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// How long each run lasts, for example 5s.
    #[arg(long, default_value = "5s")]
    pub duration: String,
    /// The members' `log_sync`: `batch`, `interval:<ms>` or `none`.
    #[arg(long, default_value = "none")]
    pub log_sync: String,
    /// Send through every member instead of the first only.
    #[arg(long)]
    pub through_all: bool,
    /// Skip the run without chaining.
    #[arg(long)]
    pub chaining_only: bool,
}

/// `tutti bench baseline` options.
#[derive(Args, Debug)]
pub struct BaselineArgs {
    /// Ping-pongs timed for the round trip.
    #[arg(long, default_value_t = 20_000)]
    pub round_trips: usize,
    /// Size of each ping, in bytes.
    #[arg(long, default_value_t = 16)]
    pub ping_bytes: usize,
    /// How long to stream, for example 2s (0 skips streaming).
    #[arg(long, default_value = "2s")]
    pub stream_duration: String,
    /// Size of a streamed message, in bytes (the messages/s figure counts these).
    #[arg(long, default_value_t = 100)]
    pub message_bytes: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs `tutti bench`; returns the exit code.
pub fn run(args: &BenchArgs) -> i32 {
    match &args.command {
        BenchCommand::Run(args) => run_one(args),
        BenchCommand::Sweep(args) => run_sweep(args),
        BenchCommand::Compare(args) => run_compare(args),
        BenchCommand::Baseline(args) => run_baseline(args),
        BenchCommand::HotKey(args) => run_hot_key(args),
    }
}

fn run_hot_key(args: &HotKeyArgs) -> i32 {
    let duration = match crate::config::parse_duration("duration", &args.duration) {
        Ok(duration) => duration,
        Err(error) => {
            eprintln!("tutti bench hot-key: {error}");
            return 2;
        }
    };
    let Ok(log_sync) = args.log_sync.parse::<SyncPolicy>() else {
        eprintln!(
            "tutti bench hot-key: --log-sync {:?} is invalid: use batch, interval:<ms> or none",
            args.log_sync
        );
        return 2;
    };
    let mut results: Vec<HotKeyResult> = Vec::new();
    let variants: &[bool] = if args.chaining_only {
        &[true]
    } else {
        &[true, false]
    };
    for &chaining in variants {
        let options = HotKeyOptions {
            members: args.members,
            clients: args.clients,
            duration,
            log_sync,
            through_all: args.through_all,
            chaining,
        };
        match hot_key::run(&options) {
            Ok(result) => results.push(result),
            Err(error) => {
                eprintln!("tutti bench hot-key: {error}");
                return 1;
            }
        }
    }
    println!(
        "hot key: {} clients through {} of {} member(s), log_sync {}, {:?} per run",
        args.clients,
        if args.through_all { "all" } else { "one" },
        args.members,
        args.log_sync,
        duration
    );
    println!(
        "chaining  commits/s  conflicts  retries  failures  p50_us  p99_us  max_us  counter  lost"
    );
    for result in &results {
        println!(
            "{:<8}  {:>9.0}  {:>9}  {:>7}  {:>8}  {:>6}  {:>6}  {:>6}  {:>7}  {}",
            if result.options.chaining { "on" } else { "off" },
            result.commits_per_second(),
            result.conflicts,
            result.retries,
            result.failures,
            result.latency_us[0],
            result.latency_us[1],
            result.latency_us[2],
            result.counter,
            if result.lost_nothing() {
                "none"
            } else {
                "LOST"
            },
        );
    }
    if let [on, off] = results.as_slice() {
        println!(
            "chaining on / off: {:.1}x commits/s",
            on.commits_per_second() / off.commits_per_second().max(1e-9)
        );
    }
    i32::from(!results.iter().all(HotKeyResult::lost_nothing))
}

fn run_baseline(args: &BaselineArgs) -> i32 {
    let stream_duration =
        match crate::config::parse_duration("stream-duration", &args.stream_duration) {
            Ok(duration) => duration,
            Err(error) => {
                eprintln!("tutti bench baseline: {error}");
                return 2;
            }
        };
    let options = BaselineOptions {
        round_trips: args.round_trips,
        ping_bytes: args.ping_bytes,
        stream_duration,
        message_bytes: args.message_bytes,
    };
    let measured = match baseline::measure(&options) {
        Ok(measured) => measured,
        Err(error) => {
            eprintln!("tutti bench baseline: {error}");
            return 1;
        }
    };
    print!("{}", measured.table());
    if let Some(path) = &args.json {
        if let Err(error) = std::fs::write(path, measured.to_json() + "\n") {
            eprintln!(
                "tutti bench baseline: cannot write {}: {error}",
                path.display()
            );
            return 1;
        }
    }
    0
}

/// A run made ready from the options: its configuration and how to reach its target.
struct Plan {
    config: RunConfig,
    /// In-process: the group to start for each run.
    group: Option<GroupSpec>,
    /// Connect: the servers.
    connect: Vec<String>,
    baseline: bool,
    quiet: bool,
}

/// Checks the options and builds the plan of a run of `workload`.
fn plan(args: &WorkloadArgs, workload: Workload) -> Result<Plan, String> {
    if let Some(netem) = &args.netem {
        return Err(format!(
            "--netem {netem}: network namespaces with tc netem are not built yet; members \
             run in this process on loopback, so message delays are the scheduler's, not a \
             network's"
        ));
    }
    let duration =
        crate::config::parse_duration("duration", &args.duration).map_err(|e| e.to_string())?;
    let warmup =
        crate::config::parse_duration("warmup", &args.warmup).map_err(|e| e.to_string())?;
    if !matches!(args.send_to.as_str(), "all" | "first") {
        return Err(format!(
            "--send-to {:?} is invalid: use all or first",
            args.send_to
        ));
    }
    let connect: Vec<String> = args
        .connect
        .iter()
        .flat_map(|list| list.split(','))
        .map(|address| address.trim().to_owned())
        .filter(|address| !address.is_empty())
        .collect();
    let log_sync_text = args.log_sync.clone().unwrap_or_else(|| {
        if connect.is_empty() {
            "batch"
        } else {
            "unknown"
        }
        .to_owned()
    });
    let io_backend_text = args.io_backend.clone().unwrap_or_else(|| {
        if connect.is_empty() {
            "auto"
        } else {
            "unknown"
        }
        .to_owned()
    });
    let group = if connect.is_empty() {
        Some(group_spec(args, &log_sync_text, &io_backend_text)?)
    } else {
        None
    };
    let config = RunConfig {
        target: if connect.is_empty() {
            "in-process"
        } else {
            "connect"
        }
        .to_owned(),
        members: if connect.is_empty() {
            args.members
        } else {
            connect.len()
        },
        connect: connect.clone(),
        log_sync: log_sync_text,
        io_backend: io_backend_text,
        mode: args.mode.clone(),
        consistency: args.consistency.clone(),
        isolation: "command".to_owned(),
        workload,
        distribution: args.distribution.clone(),
        keys: args.keys,
        txn_keys: args.txn_keys,
        value_size: args.value_size,
        read_ratio: args.read_ratio,
        clients: args.clients,
        duration_s: duration.as_secs_f64(),
        warmup_s: warmup.as_secs_f64(),
        rate: args.rate,
        send_to: args.send_to.clone(),
        seed: args.seed,
        autocommit_retries: args.autocommit_retries,
        chaining: true,
    };
    suite::validate(&config).map_err(|error| error.to_string())?;
    if let Some(rate) = config.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!(
                "--rate {rate} is invalid: use a positive number of operations per second"
            ));
        }
    }
    Ok(Plan {
        config,
        group,
        connect,
        baseline: !args.no_baseline,
        quiet: args.quiet,
    })
}

/// The in-process group of a run.
fn group_spec(args: &WorkloadArgs, log_sync: &str, io_backend: &str) -> Result<GroupSpec, String> {
    let log_sync = log_sync.parse::<SyncPolicy>().map_err(|_| {
        format!("--log-sync {log_sync:?} is invalid: use batch, interval:<ms> or none")
    })?;
    let io_backend = io_backend
        .parse::<IoBackend>()
        .map_err(|_| format!("--io-backend {io_backend:?} is invalid: use auto, uring or epoll"))?;
    let consistency = match &args.consistency {
        Some(level) => level
            .parse()
            .map_err(|reason| format!("--consistency: {reason}"))?,
        None => Consistency::default(),
    };
    Ok(GroupSpec {
        members: args.members,
        log_sync,
        io_backend,
        chaining: true,
        autocommit_retries: args.autocommit_retries,
        single_primary: args.mode == "single",
        consistency,
    })
}

/// A progress bar on stderr (hidden when it is not a terminal or with --quiet).
fn progress_bar(quiet: bool, prefix: String) -> ProgressBar {
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{elapsed_precise}] {bar:30} {msg}")
            .expect("a valid progress template"),
    );
    bar.set_prefix(prefix);
    bar
}

/// Runs one benchmark of `config` following `plan`: the baseline, a fresh target, the run.
fn execute(plan: &Plan, config: &RunConfig, label: String) -> Result<RunResult, BenchError> {
    let baseline = if plan.baseline {
        Some(BaselineFigures::measure()?)
    } else {
        None
    };
    let send_to_all = config.send_to == "all";
    let target: Box<dyn Target> = match &plan.group {
        Some(spec) => Box::new(InProcessTarget::start(spec, send_to_all)?),
        None => Box::new(RespTarget::new(
            plan.connect.clone(),
            send_to_all,
            config.consistency.clone(),
        )?),
    };
    let bar = progress_bar(plan.quiet, label);
    let mut previous = Live::default();
    let mut observe = |live: &Live| {
        let seconds = (live.elapsed.saturating_sub(previous.elapsed))
            .as_secs_f64()
            .max(1e-3);
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let (committed, aborted) = (
            live.committed.saturating_sub(previous.committed) as f64 / seconds,
            live.aborted.saturating_sub(previous.aborted) as f64 / seconds,
        );
        bar.set_length(u64::try_from(live.total.as_millis()).unwrap_or(u64::MAX));
        bar.set_position(u64::try_from(live.elapsed.as_millis()).unwrap_or(u64::MAX));
        bar.set_message(format!(
            "committed/s {committed:.0}  aborted/s {aborted:.0}  failed {}",
            live.failed
        ));
        previous = *live;
    };
    let result = suite::run(target.as_ref(), config, baseline, &mut observe);
    bar.finish_and_clear();
    // Dropping the target stops an in-process group and removes its directories.
    drop(target);
    result
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn run_one(args: &RunArgs) -> i32 {
    let workload = match args.workload.workload.parse::<Workload>() {
        Ok(workload) => workload,
        Err(error) => {
            eprintln!("tutti bench run: {error}");
            return 2;
        }
    };
    let plan = match plan(&args.workload, workload) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("tutti bench run: {error}");
            return 2;
        }
    };
    let result = match execute(&plan, &plan.config, format!("{workload}")) {
        Ok(result) => result,
        Err(error) => {
            eprintln!("tutti bench run: {error}");
            return 1;
        }
    };
    print!("{}", result.report.table());
    if let Err(error) = write_outputs(args, &result) {
        eprintln!("tutti bench run: {error}");
        return 1;
    }
    i32::from(!result.report.checks_passed())
}

fn write_outputs(args: &RunArgs, result: &RunResult) -> Result<(), String> {
    if let Some(path) = &args.json {
        result
            .report
            .save(path)
            .map_err(|error| error.to_string())?;
    }
    if let Some(path) = &args.hgrm {
        write_file(path, &report::hgrm(&result.measured.commit_latency))?;
        if !result.measured.abort_latency.is_empty() {
            let aborts = path.with_extension("aborts.hgrm");
            write_file(&aborts, &report::hgrm(&result.measured.abort_latency))?;
        }
    }
    if let Some(path) = &args.svg {
        let mut series = vec![("commits", &result.measured.commit_latency)];
        if let Some(from_send) = &result.measured.commit_latency_from_send {
            series.push(("commits, from the send", from_send));
        }
        series.push(("aborts", &result.measured.abort_latency));
        let report = &result.report;
        let title = format!(
            "{} {}: {:.0} committed/s, {} clients, log_sync {}",
            report.config.workload,
            report.config.distribution,
            report.committed_per_s,
            report.config.clients,
            report.config.log_sync
        );
        plot::latency_svg(path, &title, &series).map_err(|error| error.to_string())?;
    }
    Ok(())
}

fn run_sweep(args: &SweepArgs) -> i32 {
    let points = match suite::contention_points(&args.contention) {
        Ok(points) => points,
        Err(error) => {
            eprintln!("tutti bench sweep: {error}");
            return 2;
        }
    };
    let workloads: Result<Vec<Workload>, String> =
        args.workload.workload.split(',').map(str::parse).collect();
    let plans: Result<Vec<Plan>, String> = workloads.and_then(|workloads| {
        workloads
            .into_iter()
            .map(|workload| {
                let mut first = args.workload.clone();
                first.distribution = points[0].to_string();
                plan(&first, workload)
            })
            .collect()
    });
    let plans = match plans {
        Ok(plans) if args.repeat > 0 => plans,
        Ok(_) => {
            eprintln!("tutti bench sweep: --repeat must be at least 1");
            return 2;
        }
        Err(error) => {
            eprintln!("tutti bench sweep: {error}");
            return 2;
        }
    };
    let labels: Vec<String> = points.iter().map(suite::point_label).collect();
    let mut reports: Vec<Report> = Vec::new();
    let mut series: Vec<SweepSeries> = Vec::new();
    for plan in &plans {
        for repeat in 1..=args.repeat {
            let mut line = SweepSeries {
                name: format!("{} #{repeat}", plan.config.workload),
                committed_per_s: Vec::new(),
                abort_rate_percent: Vec::new(),
                p99_ms: Vec::new(),
            };
            for (point, label) in points.iter().zip(&labels) {
                let config = point_config(&plan.config, point);
                let progress = format!("{} {label} #{repeat}", config.workload);
                let result = match execute(plan, &config, progress) {
                    Ok(result) => result,
                    Err(error) => {
                        eprintln!("tutti bench sweep: {} at {label}: {error}", config.workload);
                        return 1;
                    }
                };
                let report = result.report;
                #[allow(clippy::cast_precision_loss)] // latencies far below 2^52
                line.p99_ms
                    .push(report.commit_latency_us.p99 as f64 / 1000.0);
                line.committed_per_s.push(report.committed_per_s);
                line.abort_rate_percent.push(report.abort_rate * 100.0);
                if reports.is_empty() {
                    println!("{}", sweep_header(&report));
                }
                println!("{}", sweep_row(&report, repeat, label));
                reports.push(report);
            }
            series.push(line);
        }
    }
    if let Some(path) = &args.json {
        let document = serde_json::json!({ "contention": labels, "reports": reports });
        let text = serde_json::to_string_pretty(&document).expect("reports serialize") + "\n";
        if let Err(error) = write_file(path, &text) {
            eprintln!("tutti bench sweep: {error}");
            return 1;
        }
    }
    if let Some(path) = &args.svg {
        let first = &reports[0];
        let title = format!(
            "{} clients, {} member(s), log_sync {}, mode {}, {}s per point",
            first.config.clients,
            first.config.members,
            first.config.log_sync,
            first.config.mode,
            first.config.duration_s
        );
        if let Err(error) = plot::sweep_svg(path, &title, &labels, &series) {
            eprintln!("tutti bench sweep: {error}");
            return 1;
        }
    }
    i32::from(!reports.iter().all(Report::checks_passed))
}

/// The configuration of one sweep point: every operation on the point's distribution.
fn point_config(config: &RunConfig, point: &Distribution) -> RunConfig {
    let mut config = config.clone();
    config.distribution = point.to_string();
    config
}

fn sweep_header(report: &Report) -> String {
    let baseline = report.baseline.map_or_else(String::new, |b| {
        format!(
            "\nloopback baseline: round trip p50 {:.1} us, p99 {:.1} us",
            b.round_trip_p50_us, b.round_trip_p99_us
        )
    });
    format!(
        "{}; {} clients, log_sync {}, io {}, mode {}, isolation {}{baseline}\n\
         {:<9} {:>3} {:<12} {:>11} {:>10} {:>7} {:>8} {:>8} {:>8} {:>8} {:>7}",
        report.target,
        report.config.clients,
        report.config.log_sync,
        report.config.io_backend,
        report.config.mode,
        report.config.isolation,
        "workload",
        "#",
        "contention",
        "committed/s",
        "aborted/s",
        "abort%",
        "p50_us",
        "p99_us",
        "p99.9_us",
        "max_us",
        "p99/rtt"
    )
}

fn sweep_row(report: &Report, repeat: usize, label: &str) -> String {
    #[allow(clippy::cast_precision_loss)] // latencies far below 2^52
    let rtt_multiple = report.baseline.map_or_else(
        || "-".to_owned(),
        |b| {
            format!(
                "{:.0}x",
                report.commit_latency_us.p99 as f64 / b.round_trip_p50_us.max(0.001)
            )
        },
    );
    format!(
        "{:<9} {:>3} {:<12} {:>11.0} {:>10.0} {:>7.2} {:>8} {:>8} {:>8} {:>8} {:>7}",
        report.config.workload.to_string(),
        repeat,
        label,
        report.committed_per_s,
        report.aborted_per_s,
        report.abort_rate * 100.0,
        report.commit_latency_us.p50,
        report.commit_latency_us.p99,
        report.commit_latency_us.p999,
        report.commit_latency_us.max,
        rtt_multiple
    )
}

fn run_compare(args: &CompareArgs) -> i32 {
    let (a, b) = match (Report::load(&args.a), Report::load(&args.b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("tutti bench compare: {error}");
            return 2;
        }
    };
    print!("{}", report::compare(&a, &b));
    0
}

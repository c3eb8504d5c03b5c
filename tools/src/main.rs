//! The `tutti` command: a thin dispatcher over the subcommands of the `tutti` library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// tutti: a group replication engine.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one member of a group.
    Server(Box<tutti::server::ServerArgs>),
    /// Start a local N-member group (child `tutti server` processes).
    Cluster(tutti::cluster::ClusterArgs),
    /// Show a member's members and connection tables.
    Status(tutti::status::StatusArgs),
    /// Propose messages at a fixed rate through several members and report latencies.
    Load(tutti::load::LoadArgs),
    /// Benchmarks: `run`, `sweep`, `compare`, `hot-key`, `baseline`.
    Bench(tutti::bench_cmd::BenchArgs),
    /// Run the deterministic simulator over many seeds and check the protocol's properties.
    Vopr(tutti::vopr::VoprArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    match cli.command {
        Command::Server(args) => exit_code(tutti::server::run(*args)),
        Command::Cluster(args) => exit_code(tutti::cluster::run(&args)),
        Command::Status(args) => exit_code(tutti::status::run(&args)),
        Command::Load(args) => exit_code(tutti::load::run(&args)),
        Command::Bench(args) => exit_code(tutti::bench_cmd::run(&args)),
        Command::Vopr(args) => tutti::vopr::run(&args),
    }
}

/// A subcommand's exit status as the process's.
fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

//! `tutti server`: one member of a group as a process.
//!
//! It checks its configuration (file and flags), starts the member (`engine::member`:
//! group core, certifier, appliers), serves RESP clients on a session thread, and waits for SIGTERM or
//! SIGINT. Then it leaves the group voluntarily (bounded by `LEAVE_WAIT`), stops the
//! group core and exits 0. An invalid configuration exits 2 before anything starts; a
//! group core that fails (storage error, port in use) exits 1 with the reason. With a
//! `metrics_address`, it serves Prometheus metrics and the member's health there
//! (`crate::metrics`); that port is bound before the member starts, so a port in use
//! fails start-up naming the address. This module must never panic on configuration or
//! client input.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tutti_engine::group::{self, format_uuid, GroupHandle};
use tutti_engine::member::Member;
use tutti_net::transport::spawn_on_core;

use crate::config::{RawConfig, ServerConfig};
use crate::{metrics, resp};

/// Longest a stopping member waits for its removal from the group to be committed.
const LEAVE_WAIT: Duration = Duration::from_secs(5);
/// How often the main thread checks for a signal and for a failed group core.
const SIGNAL_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Exit code for an invalid configuration.
pub const EXIT_CONFIG: i32 = 2;
/// Exit code for a failure after start.
pub const EXIT_FAILURE: i32 = 1;

/// `tutti server` options.
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// A TOML configuration file; flags override its values.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The options, as flags.
    #[command(flatten)]
    pub options: RawConfig,
}

/// Runs a member until SIGTERM or SIGINT; returns the process exit code.
pub fn run(args: ServerArgs) -> i32 {
    let config = match load(args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("tutti server: invalid configuration: {error}");
            tracing::error!("invalid configuration: {error}");
            return EXIT_CONFIG;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(error) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            tracing::error!(%error, signal, "cannot install the signal handler");
            return EXIT_FAILURE;
        }
    }
    let listener = match resp::bind_client_listener(config.client_address) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(address = %config.client_address, %error, "cannot listen for clients (is the port in use?)");
            return EXIT_FAILURE;
        }
    };
    let metrics_listener = match config.metrics_address.map(metrics::bind).transpose() {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("tutti server: {error}");
            return EXIT_FAILURE;
        }
    };
    // The options the client port shows and changes (CONFIG GET / SET, requirepass).
    resp::settings::install(&config);
    let member = match Member::start(config.member_options()) {
        Ok(member) => Arc::new(member),
        Err(error) => {
            tracing::error!("cannot start the member: {error}");
            eprintln!("tutti server: cannot start: {error}");
            return EXIT_FAILURE;
        }
    };
    let group = Arc::clone(member.group());
    announce(&config, &group);
    if let Some(listener) = metrics_listener {
        if let Err(error) = metrics::serve(listener, Arc::clone(&member)) {
            tracing::error!("{error}");
            eprintln!("tutti server: {error}");
            return EXIT_FAILURE;
        }
    }
    let session_member = Arc::clone(&member);
    let session = spawn_on_core(
        "tutti-session".to_owned(),
        config.group.io_backend,
        None,
        move || async move { resp::serve(listener, session_member).await },
    );
    if let Err(error) = session {
        tracing::error!(%error, "cannot start the session thread");
        return EXIT_FAILURE;
    }
    wait_for_stop(&stop, &member)
}

fn load(args: ServerArgs) -> Result<ServerConfig, crate::config::ConfigError> {
    let file = match &args.config {
        Some(path) => RawConfig::from_file(path)?,
        None => RawConfig::default(),
    };
    ServerConfig::from_raw(file.overridden_by(args.options))
}

fn announce(config: &ServerConfig, group: &GroupHandle) {
    tracing::info!(
        member = %format_uuid(group.member_id()),
        incarnation = group.incarnation(),
        group = %format_uuid(config.group.group_name),
        client = %config.client_address,
        peer = %group.peer_addr().map(|addr| addr.to_string()).unwrap_or_default(),
        log_sync = %config.group.log_sync,
        "member started"
    );
    if let Some(metrics) = config.metrics_address {
        tracing::info!(%metrics, "serving Prometheus metrics at /metrics and the member's health at /health");
    }
}

/// Waits for a signal (then leaves and stops) or for the group core to fail.
fn wait_for_stop(stop: &AtomicBool, member: &Member) -> i32 {
    let group = member.group();
    while !stop.load(Ordering::Relaxed) {
        if let Some(failure) = group.failure() {
            tracing::error!("the group core stopped: {failure}");
            return EXIT_FAILURE;
        }
        std::thread::sleep(SIGNAL_POLL_INTERVAL);
    }
    tracing::info!("stop requested: leaving the group");
    let state = group.leave(LEAVE_WAIT);
    tracing::info!(
        state = group::state_name(state),
        "left the group (or the wait ended); stopping"
    );
    match member.shutdown(None) {
        Ok(()) => 0,
        Err(error) => {
            tracing::error!("stopping the group core: {error}");
            EXIT_FAILURE
        }
    }
}

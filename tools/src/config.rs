//! The server's configuration: a TOML file (`--config FILE`) overridden by command-line
//! flags, checked into a [`ServerConfig`] before anything starts.
//!
//! Names follow Group Replication where it has one (without the `group_replication_`
//! prefix). Durations are written with a unit: `"100ms"`, `"1s"`, `"5s"` (`"0"` is zero).
//! Unknown keys in the file are refused, so a typo never silently leaves a default in
//! place. Every refusal names the option and the values it allows. This module must
//! never start anything.
//!
//! ```toml
//! group_name = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"   # required: the group's UUID
//! data_dir = "/var/lib/tutti"                          # required
//! client_address = "127.0.0.1:6379"                    # RESP clients
//! peer_address = "127.0.0.1:33061"                     # other members
//! metrics_address = "127.0.0.1:9464"                   # Prometheus /metrics and /health (default: none)
//! seeds = ["127.0.0.1:33062"]                          # peer addresses to join through
//! bootstrap = false                                    # only the member that creates the group
//! log_sync = "batch"                                   # batch | interval:<ms> | none
//! io_backend = "auto"                                  # auto | uring | epoll
//! heartbeat_interval = "100ms"
//! suspicion_timeout = "1s"
//! member_expel_timeout = "5s"
//! unreachable_majority_timeout = "0"                   # 0 = wait forever
//! member_weight = 50                                   # 0..=100
//! single_primary_mode = true                           # one elected primary takes writes (false: every member)
//! consistency = "BEFORE_ON_PRIMARY_FAILOVER"           # EVENTUAL | BEFORE_ON_PRIMARY_FAILOVER | BEFORE | AFTER | BEFORE_AND_AFTER
//! wait_timeout = "30s"                                 # bound of every wait of a transaction
//! flow_control_mode = "QUOTA"                          # QUOTA | DISABLED
//! flow_control_period = "1s"
//! flow_control_applier_threshold = 25000               # transactions queued to the appliers
//! flow_control_certifier_threshold = 25000             # entries ordered, not yet certified
//! autocommit_retries = 3                               # runs of a conflicted command after the first
//! transaction_size_limit = 1024000                     # bytes of keys and values per transaction
//! applier_workers = 2                                  # parallel appliers (key-sharded)
//! requirepass = "secret"                               # clients must AUTH first (default: none)
//! ```
//!
//! `local_chaining = false` (default true) is for measurements only: a command then
//! never reads this member's in-flight writes, so every local conflict aborts.
//! `member_version = "1.2.3"` (default: the build's version) is for tests only: it changes
//! the version this member announces, to exercise the version compatibility rules.
//! `applier_delay = "1ms"` (default 0) is for tests only: each applier worker sleeps that
//! long per transaction, to make this member a slow applier for flow control.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use tutti_engine::applier::constants::APPLIER_WORKERS_MAX;
use tutti_engine::applier::ApplierOptions;
use tutti_engine::consistency::Consistency;
use tutti_engine::flow_control::FlowOptions;
use tutti_engine::group::{parse_uuid, GroupOptions, MEMBER_WEIGHT_DEFAULT};
use tutti_engine::member::{
    MemberOptions, AUTOCOMMIT_RETRIES_DEFAULT, COMMIT_WAIT_DEFAULT, TRANSACTION_SIZE_LIMIT_DEFAULT,
};
use tutti_engine::roles::Version;
use tutti_net::transport::IoBackend;
use tutti_storage::log::SyncPolicy;

/// Default client (RESP) address.
pub const CLIENT_ADDRESS_DEFAULT: &str = "127.0.0.1:6379";
/// Default peer address (Group Replication's default port).
pub const PEER_ADDRESS_DEFAULT: &str = "127.0.0.1:33061";
/// The longest `requirepass` accepted, in bytes.
const REQUIREPASS_BYTES_MAX: usize = 512;
/// The longest duration option accepted.
const DURATION_MAX: Duration = Duration::from_secs(3600);

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read the configuration file `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML or has an unknown key or a wrong type.
    #[error("configuration file `{path}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said (it names the key).
        message: String,
    },
    /// A required option is missing.
    #[error("option `{option}` is required: {allowed}")]
    Missing {
        /// The option.
        option: &'static str,
        /// What to give.
        allowed: &'static str,
    },
    /// An option has a value outside what it allows.
    #[error("option `{option}` = {value:?} is invalid: allowed values are {allowed}")]
    Invalid {
        /// The option.
        option: &'static str,
        /// The value given.
        value: String,
        /// The allowed values.
        allowed: String,
    },
}

/// The options as written in the file or on the command line, before checking. Every
/// field is optional here; the file's value is overridden by the flag's.
#[derive(Args, Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The group's name, a UUID (required).
    #[arg(long)]
    pub group_name: Option<String>,
    /// Data directory: member id, log, metadata (required).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address for RESP clients.
    #[arg(long)]
    pub client_address: Option<String>,
    /// Address for the other members (peer connections).
    #[arg(long)]
    pub peer_address: Option<String>,
    /// Address of the HTTP metrics endpoint (Prometheus `/metrics`, `/health`).
    #[arg(long)]
    pub metrics_address: Option<String>,
    /// Peer addresses of members to join through, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<String>>,
    /// Create the group (only the first member, on its first start).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub bootstrap: Option<bool>,
    /// `batch`, `interval:<ms>` or `none`.
    #[arg(long)]
    pub log_sync: Option<String>,
    /// auto | uring | epoll.
    #[arg(long)]
    pub io_backend: Option<String>,
    /// Heartbeat interval, for example 100ms.
    #[arg(long)]
    pub heartbeat_interval: Option<String>,
    /// Silence before a member shows UNREACHABLE, for example 1s.
    #[arg(long)]
    pub suspicion_timeout: Option<String>,
    /// UNREACHABLE time before a member is expelled, for example 5s.
    #[arg(long)]
    pub member_expel_timeout: Option<String>,
    /// Time without a majority before ERROR (0 = forever).
    #[arg(long)]
    pub unreachable_majority_timeout: Option<String>,
    /// Member weight, 0..=100.
    #[arg(long)]
    pub member_weight: Option<u8>,
    /// Single-primary mode (default true): one elected primary takes writes. The first
    /// member of a group sets the mode; later ones follow it.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub single_primary_mode: Option<bool>,
    /// Default consistency level: EVENTUAL, `BEFORE_ON_PRIMARY_FAILOVER` (default), BEFORE,
    /// AFTER or `BEFORE_AND_AFTER`.
    #[arg(long)]
    pub consistency: Option<String>,
    /// Bound of every wait of a transaction (delivery, verdict, apply, consistency).
    #[arg(long)]
    pub wait_timeout: Option<String>,
    /// For tests only: the version this member announces instead of the build's.
    #[arg(long, hide = true)]
    pub member_version: Option<String>,
    /// Flow control: QUOTA (default) or DISABLED.
    #[arg(long)]
    pub flow_control_mode: Option<String>,
    /// Flow control period, for example 1s.
    #[arg(long)]
    pub flow_control_period: Option<String>,
    /// Applier queue (transactions) over which this member throttles the group.
    #[arg(long)]
    pub flow_control_applier_threshold: Option<u64>,
    /// Certifier queue (entries) over which this member throttles the group.
    #[arg(long)]
    pub flow_control_certifier_threshold: Option<u64>,
    /// For tests only: each applier worker sleeps this long per transaction.
    #[arg(long, hide = true)]
    pub applier_delay: Option<String>,
    /// Runs of a conflicted command after the first, before `-CONFLICT`.
    #[arg(long)]
    pub autocommit_retries: Option<u32>,
    /// Largest transaction, in bytes of keys and values.
    #[arg(long)]
    pub transaction_size_limit: Option<usize>,
    /// Parallel applier workers.
    #[arg(long)]
    pub applier_workers: Option<usize>,
    /// Commands chain to this member's in-flight writes (false: for measurements only).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub local_chaining: Option<bool>,
    /// The password RESP clients must give (AUTH or HELLO ... AUTH) before any other
    /// command; empty or absent: none.
    #[arg(long)]
    pub requirepass: Option<String>,
}

impl RawConfig {
    /// Reads a TOML configuration file.
    pub fn from_file(path: &std::path::Path) -> Result<RawConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: error.to_string(),
        })
    }

    /// `self` with every option `flags` sets replaced by the flag's value.
    #[must_use]
    pub fn overridden_by(self, flags: RawConfig) -> RawConfig {
        RawConfig {
            group_name: flags.group_name.or(self.group_name),
            data_dir: flags.data_dir.or(self.data_dir),
            client_address: flags.client_address.or(self.client_address),
            peer_address: flags.peer_address.or(self.peer_address),
            metrics_address: flags.metrics_address.or(self.metrics_address),
            seeds: flags.seeds.or(self.seeds),
            bootstrap: flags.bootstrap.or(self.bootstrap),
            log_sync: flags.log_sync.or(self.log_sync),
            io_backend: flags.io_backend.or(self.io_backend),
            heartbeat_interval: flags.heartbeat_interval.or(self.heartbeat_interval),
            suspicion_timeout: flags.suspicion_timeout.or(self.suspicion_timeout),
            member_expel_timeout: flags.member_expel_timeout.or(self.member_expel_timeout),
            unreachable_majority_timeout: flags
                .unreachable_majority_timeout
                .or(self.unreachable_majority_timeout),
            member_weight: flags.member_weight.or(self.member_weight),
            single_primary_mode: flags.single_primary_mode.or(self.single_primary_mode),
            consistency: flags.consistency.or(self.consistency),
            wait_timeout: flags.wait_timeout.or(self.wait_timeout),
            member_version: flags.member_version.or(self.member_version),
            flow_control_mode: flags.flow_control_mode.or(self.flow_control_mode),
            flow_control_period: flags.flow_control_period.or(self.flow_control_period),
            flow_control_applier_threshold: flags
                .flow_control_applier_threshold
                .or(self.flow_control_applier_threshold),
            flow_control_certifier_threshold: flags
                .flow_control_certifier_threshold
                .or(self.flow_control_certifier_threshold),
            applier_delay: flags.applier_delay.or(self.applier_delay),
            autocommit_retries: flags.autocommit_retries.or(self.autocommit_retries),
            transaction_size_limit: flags.transaction_size_limit.or(self.transaction_size_limit),
            applier_workers: flags.applier_workers.or(self.applier_workers),
            local_chaining: flags.local_chaining.or(self.local_chaining),
            requirepass: flags.requirepass.or(self.requirepass),
        }
    }
}

/// The checked options of the transaction layer.
struct MemberSettings {
    flow: FlowOptions,
    applier_delay: Duration,
    single_primary_mode: bool,
    consistency: Consistency,
    wait_timeout: Duration,
    version: Version,
    autocommit_retries: u32,
    transaction_size_limit: usize,
    applier_workers: usize,
    local_chaining: bool,
}

impl MemberSettings {
    fn from_raw(raw: &RawConfig) -> Result<MemberSettings, ConfigError> {
        let consistency = match raw.consistency.as_deref() {
            None => Consistency::default(),
            Some(text) => text.parse().map_err(|allowed| ConfigError::Invalid {
                option: "consistency",
                value: text.to_owned(),
                allowed,
            })?,
        };
        let version = match raw.member_version.as_deref() {
            None => Version::of_build(),
            Some(text) => text.parse().map_err(|allowed| ConfigError::Invalid {
                option: "member_version",
                value: text.to_owned(),
                allowed,
            })?,
        };
        let wait_timeout = match raw.wait_timeout.as_deref() {
            None => COMMIT_WAIT_DEFAULT,
            Some(text) => match parse_duration("wait_timeout", text)? {
                zero if zero.is_zero() => {
                    return Err(ConfigError::Invalid {
                        option: "wait_timeout",
                        value: text.to_owned(),
                        allowed: "a positive duration such as \"30s\"".to_owned(),
                    })
                }
                wait => wait,
            },
        };
        let transaction_size_limit = raw
            .transaction_size_limit
            .unwrap_or(TRANSACTION_SIZE_LIMIT_DEFAULT);
        if transaction_size_limit == 0 || transaction_size_limit > TRANSACTION_SIZE_LIMIT_DEFAULT {
            return Err(ConfigError::Invalid {
                option: "transaction_size_limit",
                value: transaction_size_limit.to_string(),
                allowed: format!(
                    "from 1 to {TRANSACTION_SIZE_LIMIT_DEFAULT} bytes (the group's proposal limit)"
                ),
            });
        }
        let applier_workers = raw
            .applier_workers
            .unwrap_or(ApplierOptions::default().workers);
        if !(1..=APPLIER_WORKERS_MAX).contains(&applier_workers) {
            return Err(ConfigError::Invalid {
                option: "applier_workers",
                value: applier_workers.to_string(),
                allowed: format!("from 1 to {APPLIER_WORKERS_MAX}"),
            });
        }
        Ok(MemberSettings {
            flow: flow_options(raw)?,
            applier_delay: raw
                .applier_delay
                .as_deref()
                .map(|text| parse_duration("applier_delay", text))
                .transpose()?
                .unwrap_or(Duration::ZERO),
            single_primary_mode: raw.single_primary_mode.unwrap_or(true),
            consistency,
            wait_timeout,
            version,
            autocommit_retries: raw.autocommit_retries.unwrap_or(AUTOCOMMIT_RETRIES_DEFAULT),
            transaction_size_limit,
            applier_workers,
            local_chaining: raw.local_chaining.unwrap_or(true),
        })
    }
}

/// Flow control's options: mode, period and thresholds.
fn flow_options(raw: &RawConfig) -> Result<FlowOptions, ConfigError> {
    let mut flow = FlowOptions::default();
    if let Some(text) = raw.flow_control_mode.as_deref() {
        flow.mode = text.parse().map_err(|allowed| ConfigError::Invalid {
            option: "flow_control_mode",
            value: text.to_owned(),
            allowed,
        })?;
    }
    if let Some(text) = raw.flow_control_period.as_deref() {
        flow.period = parse_duration("flow_control_period", text)?;
        if flow.period.is_zero() {
            return Err(ConfigError::Invalid {
                option: "flow_control_period",
                value: text.to_owned(),
                allowed: "a positive duration such as \"1s\"".to_owned(),
            });
        }
    }
    for (option, value, field) in [
        (
            "flow_control_applier_threshold",
            raw.flow_control_applier_threshold,
            &mut flow.applier_threshold,
        ),
        (
            "flow_control_certifier_threshold",
            raw.flow_control_certifier_threshold,
            &mut flow.certifier_threshold,
        ),
    ] {
        match value {
            Some(0) => {
                return Err(ConfigError::Invalid {
                    option,
                    value: "0".to_owned(),
                    allowed: "a positive number of transactions".to_owned(),
                })
            }
            Some(threshold) => *field = threshold,
            None => {}
        }
    }
    Ok(flow)
}

/// A checked server configuration.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The group's options (addresses, seeds, timeouts, `log_sync`, ...).
    pub group: GroupOptions,
    /// Where RESP clients connect.
    pub client_address: SocketAddr,
    /// Where the HTTP metrics endpoint listens, if anywhere.
    pub metrics_address: Option<SocketAddr>,
    /// Flow control.
    pub flow: FlowOptions,
    /// Test-only sleep of each applier worker per transaction.
    pub applier_delay: Duration,
    /// Single-primary mode, if this member is the first of its group.
    pub single_primary_mode: bool,
    /// The default consistency level.
    pub consistency: Consistency,
    /// Bound of every wait of a transaction.
    pub wait_timeout: Duration,
    /// The version this member announces.
    pub member_version: Version,
    /// Runs of a conflicted command after the first.
    pub autocommit_retries: u32,
    /// Largest transaction, in bytes of keys and values.
    pub transaction_size_limit: usize,
    /// Parallel applier workers.
    pub applier_workers: usize,
    /// Commands chain to this member's in-flight writes.
    pub local_chaining: bool,
    /// The password RESP clients must give first, if any (`CONFIG SET` can change it).
    pub requirepass: Option<String>,
}

fn address(option: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::Invalid {
        option,
        value: value.to_owned(),
        allowed: "an IP address and port such as 127.0.0.1:6379".to_owned(),
    })
}

/// Parses a duration with a unit: `250ms`, `1s`, `2m`, or `0`.
pub fn parse_duration(option: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let invalid = || {
        ConfigError::Invalid {
        option,
        value: value.to_owned(),
        allowed: format!("a duration with a unit (ms, s or m) such as \"100ms\" or \"5s\", at most {}s, or \"0\"", DURATION_MAX.as_secs()),
    }
    };
    let text = value.trim();
    let duration = if text == "0" {
        Duration::ZERO
    } else if let Some(ms) = text.strip_suffix("ms") {
        Duration::from_millis(ms.trim().parse().map_err(|_| invalid())?)
    } else if let Some(s) = text.strip_suffix('s') {
        Duration::from_secs(s.trim().parse().map_err(|_| invalid())?)
    } else if let Some(m) = text.strip_suffix('m') {
        Duration::from_secs(60 * m.trim().parse::<u64>().map_err(|_| invalid())?)
    } else {
        return Err(invalid());
    };
    if duration > DURATION_MAX {
        return Err(invalid());
    }
    Ok(duration)
}

impl ServerConfig {
    /// Checks every option; the first bad one is named in the error.
    pub fn from_raw(raw: RawConfig) -> Result<ServerConfig, ConfigError> {
        let member = MemberSettings::from_raw(&raw)?;
        let group_text = raw.group_name.ok_or(ConfigError::Missing {
            option: "group_name",
            allowed: "the group's UUID, the same on every member (for example from `uuidgen`)",
        })?;
        let group_name = parse_uuid(&group_text)
            .filter(|id| *id != 0)
            .ok_or_else(|| ConfigError::Invalid {
                option: "group_name",
                value: group_text.clone(),
                allowed:
                    "a UUID other than the nil UUID, such as aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
                        .to_owned(),
            })?;
        let data_dir = raw.data_dir.ok_or(ConfigError::Missing {
            option: "data_dir",
            allowed: "a directory for this member's identity, log and metadata",
        })?;
        let client_address = address(
            "client_address",
            raw.client_address
                .as_deref()
                .unwrap_or(CLIENT_ADDRESS_DEFAULT),
        )?;
        let peer_address = address(
            "peer_address",
            raw.peer_address.as_deref().unwrap_or(PEER_ADDRESS_DEFAULT),
        )?;
        if peer_address.ip().is_unspecified() {
            return Err(ConfigError::Invalid {
                option: "peer_address",
                value: peer_address.to_string(),
                allowed: "an address the other members can reach (it is announced to them), not 0.0.0.0 or ::".to_owned(),
            });
        }
        let metrics_address = raw
            .metrics_address
            .as_deref()
            .map(|text| address("metrics_address", text))
            .transpose()?;
        let seeds = raw
            .seeds
            .unwrap_or_default()
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|text| address("seeds", text))
            .collect::<Result<Vec<_>, _>>()?;
        let mut group = GroupOptions::new(group_name, data_dir, peer_address, client_address);
        group.seeds = seeds;
        group.bootstrap = raw.bootstrap.unwrap_or(false);
        Self::storage_and_io(
            &mut group,
            raw.log_sync.as_deref(),
            raw.io_backend.as_deref(),
        )?;
        Self::timeouts(
            &mut group,
            raw.heartbeat_interval.as_deref(),
            raw.suspicion_timeout.as_deref(),
            raw.member_expel_timeout.as_deref(),
            raw.unreachable_majority_timeout.as_deref(),
        )?;
        let weight = raw.member_weight.unwrap_or(MEMBER_WEIGHT_DEFAULT);
        if weight > 100 {
            return Err(ConfigError::Invalid {
                option: "member_weight",
                value: weight.to_string(),
                allowed: "an integer from 0 to 100".to_owned(),
            });
        }
        group.member_weight = weight;
        let requirepass = raw.requirepass.filter(|password| !password.is_empty());
        if let Some(password) = &requirepass {
            if password.len() > REQUIREPASS_BYTES_MAX || password.contains(['\r', '\n']) {
                return Err(ConfigError::Invalid {
                    option: "requirepass",
                    value: "(hidden)".to_owned(),
                    allowed: format!(
                        "a password of at most {REQUIREPASS_BYTES_MAX} bytes without line breaks"
                    ),
                });
            }
        }
        Ok(ServerConfig {
            group,
            client_address,
            metrics_address,
            flow: member.flow,
            applier_delay: member.applier_delay,
            single_primary_mode: member.single_primary_mode,
            consistency: member.consistency,
            wait_timeout: member.wait_timeout,
            member_version: member.version,
            autocommit_retries: member.autocommit_retries,
            transaction_size_limit: member.transaction_size_limit,
            applier_workers: member.applier_workers,
            local_chaining: member.local_chaining,
            requirepass,
        })
    }

    /// The member's options.
    pub fn member_options(&self) -> MemberOptions {
        let mut options = MemberOptions::new(self.group.clone());
        options.autocommit_retries = self.autocommit_retries;
        options.transaction_size_limit = self.transaction_size_limit;
        options.applier.workers = self.applier_workers;
        options.chaining = self.local_chaining;
        options.single_primary_mode = self.single_primary_mode;
        options.flow = self.flow;
        options.applier.delay_per_txn = self.applier_delay;
        options.consistency = self.consistency;
        options.commit_wait = self.wait_timeout;
        options.version = self.member_version;
        options
    }

    fn storage_and_io(
        group: &mut GroupOptions,
        log_sync: Option<&str>,
        io_backend: Option<&str>,
    ) -> Result<(), ConfigError> {
        if let Some(text) = log_sync {
            group.log_sync = text
                .parse::<SyncPolicy>()
                .map_err(|error| ConfigError::Invalid {
                    option: "log_sync",
                    value: text.to_owned(),
                    allowed: error.to_string(),
                })?;
        }
        if let Some(text) = io_backend {
            group.io_backend = text
                .parse::<IoBackend>()
                .map_err(|_| ConfigError::Invalid {
                    option: "io_backend",
                    value: text.to_owned(),
                    allowed: "\"auto\", \"uring\" or \"epoll\"".to_owned(),
                })?;
        }
        Ok(())
    }

    fn timeouts(
        group: &mut GroupOptions,
        heartbeat: Option<&str>,
        suspicion: Option<&str>,
        expel: Option<&str>,
        majority: Option<&str>,
    ) -> Result<(), ConfigError> {
        if let Some(text) = heartbeat {
            group.heartbeat_interval = parse_duration("heartbeat_interval", text)?;
        }
        if let Some(text) = suspicion {
            group.suspicion_timeout = parse_duration("suspicion_timeout", text)?;
        }
        if let Some(text) = expel {
            group.member_expel_timeout = parse_duration("member_expel_timeout", text)?;
        }
        if let Some(text) = majority {
            group.unreachable_majority_timeout =
                parse_duration("unreachable_majority_timeout", text)?;
        }
        let ordered = !group.heartbeat_interval.is_zero()
            && group.heartbeat_interval < group.suspicion_timeout
            && group.suspicion_timeout < group.member_expel_timeout;
        if !ordered {
            return Err(ConfigError::Invalid {
                option: "heartbeat_interval / suspicion_timeout / member_expel_timeout",
                value: format!(
                    "{:?} / {:?} / {:?}",
                    group.heartbeat_interval, group.suspicion_timeout, group.member_expel_timeout
                ),
                allowed: "0 < heartbeat_interval < suspicion_timeout < member_expel_timeout"
                    .to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawConfig {
        RawConfig {
            group_name: Some("aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa".to_owned()),
            data_dir: Some(PathBuf::from("/tmp/x")),
            ..RawConfig::default()
        }
    }

    #[test]
    fn defaults_and_overrides() {
        let file: RawConfig =
            toml::from_str("member_weight = 70\nlog_sync = \"none\"\n").expect("parses");
        let flags = RawConfig {
            member_weight: Some(80),
            ..raw()
        };
        let config = ServerConfig::from_raw(file.overridden_by(flags)).expect("valid");
        assert_eq!(config.group.member_weight, 80);
        assert_eq!(config.group.log_sync, SyncPolicy::None);
        assert_eq!(config.client_address.to_string(), CLIENT_ADDRESS_DEFAULT);
        assert!(
            config.single_primary_mode,
            "single-primary mode is the default, as in GR"
        );
        assert_eq!(config.consistency, Consistency::BeforeOnPrimaryFailover);
        assert_eq!(config.member_version, Version::of_build());
    }

    #[test]
    fn bad_values_name_the_option() {
        let cases = [
            RawConfig {
                member_weight: Some(101),
                ..raw()
            },
            RawConfig {
                log_sync: Some("sometimes".to_owned()),
                ..raw()
            },
            RawConfig {
                io_backend: Some("kqueue".to_owned()),
                ..raw()
            },
            RawConfig {
                heartbeat_interval: Some("5 parsecs".to_owned()),
                ..raw()
            },
            RawConfig {
                group_name: Some("not-a-uuid".to_owned()),
                ..raw()
            },
            RawConfig {
                peer_address: Some("0.0.0.0:1".to_owned()),
                ..raw()
            },
            RawConfig {
                consistency: Some("SOMETIMES".to_owned()),
                ..raw()
            },
            RawConfig {
                wait_timeout: Some("0".to_owned()),
                ..raw()
            },
            RawConfig {
                member_version: Some("1.2".to_owned()),
                ..raw()
            },
            RawConfig {
                flow_control_mode: Some("SOMETIMES".to_owned()),
                ..raw()
            },
            RawConfig {
                flow_control_applier_threshold: Some(0),
                ..raw()
            },
            RawConfig {
                transaction_size_limit: Some(0),
                ..raw()
            },
            RawConfig {
                applier_workers: Some(0),
                ..raw()
            },
            RawConfig {
                requirepass: Some("a\nb".to_owned()),
                ..raw()
            },
        ];
        let options = [
            "member_weight",
            "log_sync",
            "io_backend",
            "heartbeat_interval",
            "group_name",
            "peer_address",
            "consistency",
            "wait_timeout",
            "member_version",
            "flow_control_mode",
            "flow_control_applier_threshold",
            "transaction_size_limit",
            "applier_workers",
            "requirepass",
        ];
        for (case, option) in cases.into_iter().zip(options) {
            let error = ServerConfig::from_raw(case)
                .expect_err("refused")
                .to_string();
            assert!(error.contains(option), "{error} should name {option}");
        }
        let unknown = toml::from_str::<RawConfig>("group_nmae = \"x\"\n")
            .expect_err("unknown key")
            .to_string();
        assert!(unknown.contains("group_nmae"), "{unknown}");
    }
}

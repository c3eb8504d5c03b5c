//! The server's options as the client port sees them: `CONFIG GET pattern` for every
//! option, `CONFIG SET name value` for those that can change while the member runs,
//! and the `requirepass` every connection checks.
//!
//! The options are installed once per process (one process is one member) by the
//! server just before it starts its member (`server::run`); a process that
//! never installs them (an embedded member in a test) runs with the defaults and no
//! password. Runtime-settable options live where they are used: `autocommit_retries`
//! in the member (an atomic), `requirepass` here (a lock read at AUTH and HELLO).
//! Options fixed at start-up are refused by `CONFIG SET`, naming why.

use std::sync::{OnceLock, RwLock};

use tutti_engine::group::format_uuid;
use tutti_engine::member::Member;
use tutti_storage::log::SyncPolicy;

use super::frame::Frame;
use crate::config::ServerConfig;

/// A password `CONFIG SET requirepass` takes, at most.
const PASSWORD_BYTES_MAX: usize = 512;

/// The process's options as text (name, value), in the configuration's order, and the
/// password.
struct Settings {
    fixed: Vec<(&'static str, String)>,
    requirepass: RwLock<Option<String>>,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Installs the server's options for the client port; the first call wins.
pub fn install(config: &ServerConfig) {
    let _ = SETTINGS.set(Settings {
        fixed: fixed_options(config),
        requirepass: RwLock::new(config.requirepass.clone()),
    });
}

fn settings() -> Option<&'static Settings> {
    SETTINGS.get()
}

/// The password clients must give, if one is set.
pub(crate) fn requirepass() -> Option<String> {
    settings().and_then(|settings| {
        settings
            .requirepass
            .read()
            .map_or(None, |password| password.clone())
    })
}

/// Whether `given` is the password (constant time in the password's length).
pub(crate) fn password_matches(given: &[u8]) -> bool {
    let Some(expected) = requirepass() else {
        return false;
    };
    let expected = expected.as_bytes();
    expected.len() == given.len()
        && expected
            .iter()
            .zip(given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The value of a start-up option, if the options are installed.
pub(crate) fn option(name: &str) -> Option<String> {
    settings()?
        .fixed
        .iter()
        .find(|(fixed, _)| *fixed == name)
        .map(|(_, value)| value.clone())
}

fn fixed_options(config: &ServerConfig) -> Vec<(&'static str, String)> {
    let group = &config.group;
    let appendfsync = match group.log_sync {
        SyncPolicy::Batch => "always",
        SyncPolicy::Interval(_) => "everysec",
        SyncPolicy::None => "no",
    };
    vec![
        ("group_name", format_uuid(group.group_name)),
        ("data_dir", group.data_dir.display().to_string()),
        ("client_address", config.client_address.to_string()),
        ("peer_address", group.peer_addr.to_string()),
        (
            "metrics_address",
            config
                .metrics_address
                .map(|address| address.to_string())
                .unwrap_or_default(),
        ),
        (
            "seeds",
            group
                .seeds
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("bootstrap", group.bootstrap.to_string()),
        ("log_sync", group.log_sync.to_string()),
        ("io_backend", group.io_backend.to_string()),
        ("heartbeat_interval", duration(group.heartbeat_interval)),
        ("suspicion_timeout", duration(group.suspicion_timeout)),
        ("member_expel_timeout", duration(group.member_expel_timeout)),
        (
            "unreachable_majority_timeout",
            duration(group.unreachable_majority_timeout),
        ),
        ("member_weight", group.member_weight.to_string()),
        (
            "single_primary_mode",
            config.single_primary_mode.to_string(),
        ),
        (
            "transaction_size_limit",
            config.transaction_size_limit.to_string(),
        ),
        ("applier_workers", config.applier_workers.to_string()),
        ("local_chaining", config.local_chaining.to_string()),
        ("wait_timeout", duration(config.wait_timeout)),
        // Redis's names for what tutti does, read-only, for tools that ask
        // (redis-benchmark asks for `save` and `appendonly`).
        ("appendonly", "yes".to_owned()),
        ("appendfsync", appendfsync.to_owned()),
        ("save", String::new()),
        ("databases", "1".to_owned()),
    ]
}

fn duration(value: std::time::Duration) -> String {
    if value.is_zero() {
        "0".to_owned()
    } else if value.subsec_millis() == 0 {
        format!("{}s", value.as_secs())
    } else {
        format!("{}ms", value.as_millis())
    }
}

/// `CONFIG GET pattern [pattern ...]` and `CONFIG SET name value`.
pub(super) fn config_command(args: &[bytes::Bytes], member: &Member) -> Frame {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_uppercase();
    match (sub.as_str(), args.len()) {
        ("GET", 3..) => {
            let options = current_options(member);
            let mut pairs = Vec::new();
            for (name, value) in &options {
                if args[2..]
                    .iter()
                    .any(|pattern| glob_matches(&pattern.to_ascii_lowercase(), name.as_bytes()))
                {
                    pairs.push((*name, Frame::bulk(value.clone())));
                }
            }
            Frame::map(pairs)
        }
        ("SET", 4) => config_set(
            &String::from_utf8_lossy(&args[2]).to_ascii_lowercase(),
            &args[3],
            member,
        ),
        ("RESETSTAT" | "REWRITE", 2) => Frame::error(format!(
            "ERR CONFIG {sub} is not supported: options come from the configuration file and flags"
        )),
        _ => Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for 'CONFIG {sub}': use GET pattern or SET name value"
        )),
    }
}

fn current_options(member: &Member) -> Vec<(&'static str, String)> {
    let mut options = vec![
        (
            "autocommit_retries",
            member.autocommit_retries().to_string(),
        ),
        ("requirepass", requirepass().unwrap_or_default()),
        ("consistency", member.consistency().to_string()),
    ];
    if let Some(settings) = settings() {
        options.extend(settings.fixed.iter().cloned());
    }
    options
}

fn config_set(name: &str, value: &[u8], member: &Member) -> Frame {
    let text = String::from_utf8_lossy(value);
    match name {
        "autocommit_retries" => match text.parse::<u32>() {
            Ok(retries) => {
                member.set_autocommit_retries(retries);
                Frame::ok()
            }
            Err(_) => Frame::error(format!(
                "ERR CONFIG SET failed (possibly related to argument 'autocommit_retries') - '{text}' is not a non-negative 32-bit integer"
            )),
        },
        "consistency" => match text.parse() {
            Ok(level) => {
                member.set_consistency(level);
                Frame::ok()
            }
            Err(reason) => Frame::error(format!(
                "ERR CONFIG SET failed (possibly related to argument 'consistency') - {reason}"
            )),
        },
        "requirepass" => {
            let Some(settings) = settings() else {
                return not_installed();
            };
            if value.len() > PASSWORD_BYTES_MAX || std::str::from_utf8(value).is_err() {
                return Frame::error(format!(
                    "ERR CONFIG SET failed (possibly related to argument 'requirepass') - a password is UTF-8 of at most {PASSWORD_BYTES_MAX} bytes"
                ));
            }
            let password = (!value.is_empty()).then(|| text.into_owned());
            match settings.requirepass.write() {
                Ok(mut current) => {
                    *current = password;
                    Frame::ok()
                }
                Err(_) => not_installed(),
            }
        }
        _ => match settings().and_then(|settings| settings.fixed.iter().find(|(fixed, _)| *fixed == name)) {
            Some(_) => Frame::error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config: it is read at start-up (configuration file or --{} flag); restart the member to change it",
                name.replace('_', "-")
            )),
            None => Frame::error(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            )),
        },
    }
}

/// The refusal when the process never installed its options (an embedded member).
fn not_installed() -> Frame {
    Frame::error("ERR this member was started without server options; requirepass cannot be set")
}

/// Redis's glob: `*` any run, `?` one byte, `[...]` a class, `\` escapes.
pub(crate) fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(b'?') => Some(1),
            Some(b'[') => class_matches(&pattern[p..], text[t]).map(
                |(matched, used)| {
                    if matched {
                        used
                    } else {
                        0
                    }
                },
            ),
            Some(b'\\') if p + 1 < pattern.len() => (pattern[p + 1] == text[t]).then_some(2),
            Some(&byte) => (byte == text[t]).then_some(1),
            None => None,
        };
        match step {
            Some(used) if used > 0 => {
                p += used;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..]
        .iter()
        .all(|&byte| byte == b'*')
}

/// Whether `byte` is in the class at the start of `pattern` (`[abc]`, `[a-z]`, `[^x]`),
/// and the class's length; `None` for an unterminated class.
fn class_matches(pattern: &[u8], byte: u8) -> Option<(bool, usize)> {
    let end = pattern.iter().skip(1).position(|&b| b == b']')? + 1;
    let body = &pattern[1..end];
    let (negated, body) = match body.split_first() {
        Some((b'^', rest)) => (true, rest),
        _ => (false, body),
    };
    let mut matched = false;
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == b'-' {
            let (low, high) = (body[i].min(body[i + 2]), body[i].max(body[i + 2]));
            matched |= (low..=high).contains(&byte);
            i += 3;
        } else {
            matched |= body[i] == byte;
            i += 1;
        }
    }
    Some((matched != negated, end + 1))
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn glob_like_redis() {
        for (pattern, text, expected) in [
            ("*", "anything", true),
            ("auto*", "autocommit_retries", true),
            ("*sync", "log_sync", true),
            ("log_syn?", "log_sync", true),
            ("log_syn?", "log_sync2", false),
            ("[al]og_sync", "log_sync", true),
            ("[^l]og_sync", "log_sync", false),
            ("save", "save", true),
            ("save", "saves", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
        ] {
            assert_eq!(
                glob_matches(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }
}

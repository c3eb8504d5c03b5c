//! The runtime a transport runs on: one monoio runtime per pinned core, on io_uring or
//! on epoll, chosen explicitly or by a start-up check.
//!
//! `io_backend = "uring"` uses monoio's `IoUringDriver`, `"epoll"` its `LegacyDriver`,
//! and `"auto"` probes io_uring once and picks it when it works, logging why either way.
//! Container seccomp profiles and `kernel.io_uring_disabled` often block io_uring; asking
//! for `uring` explicitly where it is blocked is an error that says what to change, never
//! a silent fallback. Pinning a thread to its core is best effort: a failure is logged
//! and the runtime runs unpinned. This module never touches sockets.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::OnceLock;

use monoio::time::TimeDriver;
use monoio::{FusionRuntime, IoUringDriver, LegacyDriver, RuntimeBuilder};

use super::constants::URING_ENTRIES;

/// Which io backend the transport's runtime uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoBackend {
    /// Probe io_uring at start-up and use it when it works, else epoll.
    Auto,
    /// io_uring (monoio's `IoUringDriver`): one submission carries many operations.
    Uring,
    /// epoll readiness plus non-blocking syscalls (monoio's `LegacyDriver`).
    Epoll,
}

impl fmt::Display for IoBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Uring => "uring",
            Self::Epoll => "epoll",
        })
    }
}

impl FromStr for IoBackend {
    type Err = RuntimeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "uring" | "io_uring" => Ok(Self::Uring),
            "epoll" | "legacy" => Ok(Self::Epoll),
            _ => Err(RuntimeError::UnknownBackend {
                value: text.to_owned(),
            }),
        }
    }
}

/// Why a runtime could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The configured `io_backend` is not one of the known names.
    #[error("unknown io_backend {value:?}: use \"uring\", \"epoll\" or \"auto\"")]
    UnknownBackend {
        /// The value given.
        value: String,
    },
    /// `io_backend = "uring"` was asked for and io_uring does not work here.
    #[error(
        "io_backend = \"uring\" was asked for, but io_uring is not usable here ({reason}); \
         set io_backend = \"epoll\" (or \"auto\"), or allow io_uring: \
         sysctl kernel.io_uring_disabled=0 and a seccomp profile that permits \
         io_uring_setup, io_uring_enter and io_uring_register"
    )]
    UringUnavailable {
        /// What the probe found.
        reason: String,
    },
    /// The runtime could not be built (for example out of memory for the ring or the
    /// epoll instance, or the open-files limit).
    #[error("cannot build the {backend} runtime: {source}")]
    Build {
        /// The backend being built.
        backend: IoBackend,
        /// The error from the operating system.
        source: std::io::Error,
    },
}

/// The backend a runtime will use and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendChoice {
    /// `Uring` or `Epoll`, never `Auto`.
    pub backend: IoBackend,
    /// Why: the explicit setting, or what the probe found.
    pub reason: String,
}

/// Whether io_uring works in this process, with the reason when it does not. Probed once
/// per process: the answer cannot change while it runs.
pub fn probe_uring() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE.get_or_init(probe_uring_uncached).clone()
}

fn probe_uring_uncached() -> Result<(), String> {
    let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|text| text.trim().to_owned())
        .ok();
    // Building a ring shows how io_uring_setup answers here: EPERM comes from a seccomp
    // filter or kernel.io_uring_disabled, ENOSYS from a kernel without io_uring (or a
    // filter that pretends so).
    if let Err(error) = RuntimeBuilder::<IoUringDriver>::new()
        .with_entries(256)
        .build()
    {
        let sysctl_note = match sysctl.as_deref() {
            Some(value) if value != "0" => format!("; kernel.io_uring_disabled = {value}"),
            _ => String::new(),
        };
        return Err(format!(
            "io_uring_setup failed: {error}{sysctl_note} (blocked by seccomp or kernel.io_uring_disabled, or a kernel without io_uring)"
        ));
    }
    // The ring exists; monoio also needs a set of opcodes (accept, connect, send, recv,
    // timeout, cancel, ...) that older kernels lack.
    if !monoio::utils::detect_uring() {
        return Err(
            "io_uring works but lacks opcodes monoio needs (kernel older than 5.6?), or MONOIO_FORCE_LEGACY_DRIVER is set"
                .to_owned(),
        );
    }
    Ok(())
}

/// Resolves the configured backend to the one to use, with a reason fit for the log.
pub fn choose_backend(requested: IoBackend) -> Result<BackendChoice, RuntimeError> {
    match requested {
        IoBackend::Epoll => Ok(BackendChoice {
            backend: IoBackend::Epoll,
            reason: "io_backend = \"epoll\" was configured".to_owned(),
        }),
        IoBackend::Uring => match probe_uring() {
            Ok(()) => Ok(BackendChoice {
                backend: IoBackend::Uring,
                reason: "io_backend = \"uring\" was configured and io_uring works here".to_owned(),
            }),
            Err(reason) => Err(RuntimeError::UringUnavailable { reason }),
        },
        IoBackend::Auto => Ok(match probe_uring() {
            Ok(()) => BackendChoice {
                backend: IoBackend::Uring,
                reason: "io_backend = \"auto\": the io_uring probe succeeded".to_owned(),
            },
            Err(reason) => BackendChoice {
                backend: IoBackend::Epoll,
                reason: format!("io_backend = \"auto\": io_uring is not usable ({reason}), falling back to epoll"),
            },
        }),
    }
}

/// A runtime of either backend; both carry monoio's timer driver.
pub type CoreRuntime = FusionRuntime<TimeDriver<IoUringDriver>, TimeDriver<LegacyDriver>>;

/// Builds a runtime for `requested` on the calling thread, pinned to `core` when given,
/// and logs the choice. A pinning failure is logged and the runtime runs unpinned.
pub fn build_core_runtime(
    requested: IoBackend,
    core: Option<usize>,
) -> Result<(CoreRuntime, BackendChoice), RuntimeError> {
    let choice = choose_backend(requested)?;
    if let Some(core) = core {
        if let Err(error) = monoio::utils::bind_to_cpu_set([core]) {
            tracing::warn!(core, %error, "cannot pin the runtime thread to its core; running unpinned");
        }
    }
    let runtime: CoreRuntime = match choice.backend {
        IoBackend::Uring => RuntimeBuilder::<IoUringDriver>::new()
            .with_entries(URING_ENTRIES)
            .enable_timer()
            .build()
            .map(Into::into),
        IoBackend::Epoll | IoBackend::Auto => RuntimeBuilder::<LegacyDriver>::new()
            .enable_timer()
            .build()
            .map(Into::into),
    }
    .map_err(|source| RuntimeError::Build {
        backend: choice.backend,
        source,
    })?;
    tracing::info!(backend = %choice.backend, core = ?core, reason = %choice.reason, "io backend chosen");
    Ok((runtime, choice))
}

/// Runs `future` to completion on a new runtime on the calling thread (see
/// [`build_core_runtime`]) and returns its output with the backend that ran it.
pub fn block_on_core<F: Future>(
    requested: IoBackend,
    core: Option<usize>,
    future: F,
) -> Result<(F::Output, IoBackend), RuntimeError> {
    let (mut runtime, choice) = build_core_runtime(requested, core)?;
    Ok((runtime.block_on(future), choice.backend))
}

/// Starts a named thread that builds its own runtime (see [`build_core_runtime`]),
/// pinned to `core` when given, and runs the future `make_future` creates there. The
/// future is made on the new thread because a thread-per-core future (a `Transport`, a
/// group core loop) is not `Send`; only its output crosses back. A runtime that cannot be
/// built ends the thread with the error.
pub fn spawn_on_core<F, Fut>(
    name: String,
    requested: IoBackend,
    core: Option<usize>,
    make_future: F,
) -> std::io::Result<std::thread::JoinHandle<Result<Fut::Output, RuntimeError>>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future,
    Fut::Output: Send + 'static,
{
    std::thread::Builder::new().name(name).spawn(move || {
        let (mut runtime, _) = build_core_runtime(requested, core)?;
        Ok(runtime.block_on(make_future()))
    })
}

/// The backend of the runtime the calling task runs on.
pub(crate) fn current_backend() -> IoBackend {
    if monoio::utils::is_legacy() {
        IoBackend::Epoll
    } else {
        IoBackend::Uring
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_round_trip() {
        for backend in [IoBackend::Auto, IoBackend::Uring, IoBackend::Epoll] {
            assert_eq!(backend.to_string().parse::<IoBackend>().ok(), Some(backend));
        }
        assert_eq!("EPOLL".parse::<IoBackend>().ok(), Some(IoBackend::Epoll));
        let error = "kqueue".parse::<IoBackend>().err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("unknown io_backend \"kqueue\": use \"uring\", \"epoll\" or \"auto\"")
        );
    }

    #[test]
    fn a_core_that_cannot_be_pinned_still_runs_unpinned() {
        for core in [Some(0), Some(100_000), None] {
            let thread = spawn_on_core("pin-test".to_owned(), IoBackend::Epoll, core, || async {
                monoio::time::sleep(std::time::Duration::from_millis(1)).await;
                current_backend()
            })
            .expect("thread spawned");
            let backend = thread.join().expect("no panic").expect("runtime built");
            assert_eq!(backend, IoBackend::Epoll, "core {core:?}");
        }
    }

    #[test]
    fn auto_always_resolves_to_a_concrete_backend() {
        let choice = choose_backend(IoBackend::Auto).expect("auto never fails");
        assert_ne!(choice.backend, IoBackend::Auto);
        assert_eq!(choice.backend == IoBackend::Uring, probe_uring().is_ok());
    }
}

//! Where io_uring is not usable, `io_backend = "uring"` fails with an error that says
//! what to change, and `auto` falls back to epoll with the reason. io_uring works on the
//! development machines, so this test makes it unusable for monoio the way monoio itself
//! allows (`MONOIO_FORCE_LEGACY_DRIVER`), in its own process: the probe runs once per
//! process and this file holds a single test.

mod transport_support;

use transport_support::{config, loopback, Member, StartError};
use tutti_net::transport::{choose_backend, probe_uring, IoBackend, RuntimeError};

#[test]
fn uring_where_it_is_blocked_is_an_error_that_says_what_to_do() {
    // Set before anything in this process probes io_uring; this is the only test here,
    // so no other thread reads the environment meanwhile.
    std::env::set_var("MONOIO_FORCE_LEGACY_DRIVER", "1");
    let reason = probe_uring().expect_err("io_uring is refused for monoio in this process");
    assert!(reason.contains("MONOIO_FORCE_LEGACY_DRIVER"), "{reason}");

    let Err(StartError::Runtime(error)) = Member::start(config(1, 1, loopback()), IoBackend::Uring)
    else {
        panic!("a member must not start on io_uring here");
    };
    assert!(matches!(error, RuntimeError::UringUnavailable { .. }));
    let text = error.to_string();
    assert!(text.contains("set io_backend = \"epoll\""), "{text}");
    assert!(text.contains("kernel.io_uring_disabled"), "{text}");

    let auto = choose_backend(IoBackend::Auto).expect("auto always resolves");
    assert_eq!(auto.backend, IoBackend::Epoll);
    assert!(
        auto.reason.contains("falling back to epoll"),
        "{}",
        auto.reason
    );
    let member =
        Member::start(config(1, 1, loopback()), IoBackend::Auto).expect("auto starts on epoll");
    assert_eq!(member.snapshot().io_backend, IoBackend::Epoll);
    member.stop();
}

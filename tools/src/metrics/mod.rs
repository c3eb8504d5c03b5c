//! The metrics endpoint of `tutti server`: Prometheus text at `GET /metrics` and the
//! member's health at `GET /health`, on `metrics_address`, on threads of its own.
//!
//! ```text
//!   GET /metrics ─► Snapshot::of(member): members, member stats, connections,
//!                   group stats, latencies ─► Prometheus text 0.0.4
//!   GET /health  ─► 200 "ONLINE" when this member is ONLINE, else 503 and its state
//!   anything else ─► 404;  a bad request ─► 400 (see `http`)
//! ```
//!
//! Every scrape reads the same tables `GROUP ...` and `tutti status` show (DESIGN.md
//! section 13); nothing here counts on its own. This module must never block the member:
//! it only reads its published tables and atomic counters.

mod exposition;
mod families;
pub mod http;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use tutti_engine::group::state_name;
use tutti_engine::member::Member;
use tutti_net::gcs::MemberState;

pub use families::{render, Snapshot};
use http::{Request, Response};

/// `Content-Type` of the Prometheus text format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address could not be bound.
    #[error("cannot listen for metrics on {address}: {source} (is the port in use? set another metrics_address)")]
    Bind {
        /// `metrics_address`.
        address: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The endpoint's threads could not start.
    #[error("cannot start the metrics endpoint's threads: {0} (check the process's thread limit)")]
    Thread(#[source] std::io::Error),
}

/// Binds `address` (before the member starts, so a port in use fails early).
pub fn bind(address: SocketAddr) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(address).map_err(|source| MetricsError::Bind { address, source })
}

/// Serves `/metrics` and `/health` for `member` on `listener` until the process exits.
pub fn serve(listener: TcpListener, member: Arc<Member>) -> Result<(), MetricsError> {
    http::serve(listener, move |request: &Request| route(&member, request))
        .map_err(MetricsError::Thread)
}

fn route(member: &Member, request: &Request) -> Response {
    match request.path.as_str() {
        "/metrics" => Response {
            status: 200,
            content_type: PROMETHEUS_CONTENT_TYPE,
            body: render(&Snapshot::of(member)),
        },
        "/health" => health(member.group().stats().state),
        _ => Response::text(404, "not found: the endpoint serves /metrics and /health\n"),
    }
}

/// 200 `ONLINE` for an ONLINE member, else 503 with its state.
fn health(state: Option<MemberState>) -> Response {
    let state = state.unwrap_or(MemberState::Offline);
    let status = if state == MemberState::Online {
        200
    } else {
        503
    };
    Response::text(status, format!("{}\n", state_name(state)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_200_only_when_online() {
        assert_eq!(
            health(Some(MemberState::Online)),
            Response::text(200, "ONLINE\n")
        );
        assert_eq!(
            health(Some(MemberState::Recovering)),
            Response::text(503, "RECOVERING\n")
        );
        assert_eq!(health(None), Response::text(503, "OFFLINE\n"));
    }

    #[test]
    fn a_bind_failure_names_the_address() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = taken.local_addr().expect("address");
        let error = bind(address).expect_err("the port is taken");
        assert!(error.to_string().contains(&address.to_string()), "{error}");
    }
}

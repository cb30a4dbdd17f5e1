//! Test helpers shared by the workspace's tests and benchmarks. Never published.
//!
//! It depends on no crate of the workspace, not even as a dev-dependency, so no crate reaches
//! itself through dev-dependencies. A test that needs several of the workspace's crates lives
//! in the highest crate it needs (the swarm's `tests/cluster_webrtc.rs`). This crate's own
//! `tests/architecture.rs` checks the workspace's shape (import circles, the crate graph
//! against `docs/architecture.md`, the core's dependencies, the `cfg` seam).
//!
//! One module per concern:
//! - [`server_bin`]: where the `fast-rtc-server` binary is, spawning it (or any child that
//!   announces itself on its first line of output) and reading its listening line.
//! - [`redis`]: a Redis (or Valkey) server of the test's own on a free loopback port.
//! - [`coturn`]: Debian's coturn (`turnserver`) on a free port, with one long-term user or a
//!   TURN REST API secret, optionally inside a network namespace (the network lab's tests).
//! - [`routes`]: the native backend's `selected candidate pair` events, recorded by a tracing
//!   layer (candidate types and addresses, read from the event's fields; `echo_peer` reports
//!   them in its `open` events).
//! - [`pki`]: a test CA and a certificate it signed for `127.0.0.1` and `localhost`.
//!
//! The helpers return errors (their callers, tests, turn them into failures with a message);
//! they stop every child they started when dropped.

#![forbid(unsafe_code)]

pub mod coturn;
pub mod pki;
pub mod redis;
pub mod routes;
pub mod server_bin;

/// Kills `child` (SIGKILL) and reaps it; nothing to report if it had already exited.
fn stop(child: &mut std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

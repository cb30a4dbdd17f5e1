#!/usr/bin/env bash
# Cluster tests: several fast-rtc-server instances sharing rooms over a real Redis (Debian's
# redis-server; valkey-server is used instead where it is installed). Installs the server if
# missing; each test starts its own on a free loopback port (crates/fast_rtc_server/tests/cluster.rs,
# and crates/fast_rtc_swarm/tests/cluster_webrtc.rs for real WebRTC members). Called by
# scripts/test.sh. The tests are #[ignore]d in a plain `cargo test` and run here with --ignored,
# where a missing Redis fails them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Valkey where it is installed, else Debian's redis-server.
command -v valkey-server >/dev/null 2>&1 || ./scripts/need.sh redis-server redis-server
# Debian's package starts a system service on port 6379; the tests do not use it.
cargo test --locked -p fast_rtc_server --test cluster -- --ignored
# The swarm's tests find the `fast-rtc-server` binary beside their own executable (see
# fast_rtc_testkit::server_bin): build it first, in the same (debug) profile.
cargo build --locked -p fast_rtc_server --bin fast-rtc-server
cargo test --locked -p fast_rtc_swarm --test cluster_webrtc -- --ignored

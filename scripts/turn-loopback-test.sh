#!/usr/bin/env bash
# TURN on loopback: crates/fast_rtc_swarm/tests/e2e_turn.rs, whose tests each start a real coturn
# (Debian's `turnserver`) on a free port of 127.0.0.1 and link real webrtc-rs members through it:
# a wrong TURN password must give the typed SwarmFault::RelayUnavailable, the right one must link
# relay to relay with no such fault; and crates/fast_rtc_swarm/tests/e2e_server_ice.rs, whose
# coturn takes the TURN REST API's time-limited credentials minted by the signaling server for
# members with no ICE servers of their own (an expired one refused, fresh ones linking). The
# tests are #[ignore]d (a plain `cargo test` lists them as
# ignored) and run here with --ignored; without `turnserver` they fail, they do not skip.
# Called by scripts/test.sh; installing coturn needs root (apt).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/need.sh turnserver coturn

cargo test --locked -p fast_rtc_swarm --test e2e_turn --test e2e_server_ice --test e2e_restart -- --ignored

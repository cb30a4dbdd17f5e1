#!/usr/bin/env bash
# Cluster tests: several fast-rtc-server instances sharing rooms over a real Redis (Debian's
# redis-server; valkey-server is used instead where it is installed). Installs the server if
# missing; each test starts its own on a free loopback port (tests/cluster.rs). Called by
# scripts/test.sh. The tests are #[ignore]d in a plain `cargo test` and run here with --ignored,
# where a missing Redis fails them.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valkey-server >/dev/null 2>&1 && ! command -v redis-server >/dev/null 2>&1; then
    echo "== installing redis-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq redis-server >/dev/null
fi
# Debian's package starts a system service on port 6379; the tests do not use it.
cargo test --locked -p fast_rtc_server --test cluster -- --ignored

#!/usr/bin/env bash
# The signaling server's figures in cluster mode, 1 vs 3 instances sharing one Redis (Debian's
# redis-server; valkey-server is used instead where it is installed), clients spread over the
# instances round-robin. Installs redis-server if missing; the bench starts its own on a free
# loopback port (Debian's package also starts a system service on 6379; the bench does not use
# it). Extra arguments go to `server` (see `server --help`), e.g.
#   scripts/bench-cluster.sh --idle 10000
#   scripts/bench-cluster.sh --instances 1,2,4 --runs 5
set -euo pipefail
cd "$(dirname "$0")/.."

# Valkey where it is installed, else Debian's redis-server.
command -v valkey-server >/dev/null 2>&1 || ./scripts/need.sh redis-server redis-server

case " $* " in
    *" --instances"*) ;;
    *) set -- --instances 1,3 "$@" ;;
esac
cargo run --locked --release -p fast_rtc_bench -- server "$@"

#!/usr/bin/env bash
# The join bench with its relay rows: joins of bevy_fast_rtc through a real coturn (Debian's
# `turnserver`, started by the bench itself inside its network namespace, with a user made for
# the run), relay-only members, beside the same joins direct, in one run; the direct join rows
# of ours and matchbox come first as usual. Needs root (the bench's network namespace; apt to
# install coturn when missing). Extra arguments go to `join` (see `join --help`), e.g.
#   scripts/bench-relay.sh --runs 15 --relay-members 1,4,8
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/need.sh turnserver coturn

cargo run --locked --release -p fast_rtc_bench -- join --coturn --mesh 0 --steady-seconds 0 "$@"

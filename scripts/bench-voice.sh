#!/usr/bin/env bash
# The voice bench rows (issue 13): mouth-to-ear latency on loopback (p50/p99), CPU per voice
# stream against the same mesh without audio, and the join time with one audio track declared
# vs none. bevy_fast_rtc only: matchbox has no voice. Runs on 127.0.0.1, no root needed; about
# 4 minutes with the defaults. Installs cmake when missing (the voice feature builds libopus).
# Extra arguments go to `voice` (see `voice --help`), e.g.
#   scripts/bench-voice.sh --latency-runs 5 --cpu-members 2,4,8
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/need.sh cmake cmake

cargo run --locked --release -p fast_rtc_bench --features voice -- voice "$@"

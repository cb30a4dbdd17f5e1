#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (seconds per target, default 20) and prints
# how many inputs each executed. Installs cargo-fuzz at an exact version if it is missing. The
# targets build on the stable toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags),
# without a sanitizer (-s none): the code fuzzed forbids unsafe, and ASan would double the
# build of webrtc-rs the swarm target links.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
version=0.13.2
if [ "$(cargo fuzz --version 2>/dev/null | awk '{ print $2 }')" != "$version" ]; then
    cargo install cargo-fuzz --version "$version" --locked
fi
export RUSTC_BOOTSTRAP=1
for target in crates/fast_rtc_server/fuzz:hub_frames crates/fast_rtc_swarm_core/fuzz:core_inputs; do
    dir="${target%%:*}"
    name="${target##*:}"
    log=$(mktemp)
    # A crash makes libFuzzer exit non-zero with the input saved under artifacts/: that fails
    # the run, and the input becomes a regression case in the crate's fuzz_replay test.
    if ! (cd "$dir/.." && cargo fuzz run -s none "$name" -- -max_total_time="$seconds" -rss_limit_mb=2048) >"$log" 2>&1; then
        tail -n 40 "$log"
        rm -f "$log"
        echo "fuzz: $name FAILED"
        exit 1
    fi
    runs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)
    rm -f "$log"
    echo "fuzz: $name: ${runs:-no run count printed}"
done

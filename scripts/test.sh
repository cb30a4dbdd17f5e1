#!/usr/bin/env bash
# Runs every check and test of the workspace: formatting, clippy (warnings are errors), unit,
# property, wire, WebRTC end-to-end and doc tests, bounded fuzz runs, the browser tests in
# headless Chromium and Firefox, then
# the multiplayer example headless. This is the README's test command and what CI runs.
# It installs what it needs (rustfmt and clippy components, and scripts/setup-browser.sh) so it
# works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
echo "== cmake (the voice feature builds libopus from source)"
./scripts/need.sh cmake cmake
echo "== ALSA headers (the cpal feature: a real microphone and speaker)"
./scripts/need.sh pkg-config pkg-config
./scripts/need.sh pkg-config:alsa libasound2-dev
echo "== browser test tools (chromium, chromedriver, firefox-esr, geckodriver, wasm32 target, wasm-bindgen-cli)"
./scripts/setup-browser.sh

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
# Every feature: ggrs, cpal (which brings voice), replicon, the bench's voice rows.
cargo clippy --workspace --all-targets --locked --features bevy_fast_rtc/ggrs,bevy_fast_rtc/cpal,bevy_fast_rtc/replicon,fast_rtc_bench/voice -- -D warnings
echo "== cargo clippy, wasm32 (the swarm's browser build, the plugin, the example in a browser)"
cargo clippy -p fast_rtc_swarm --lib --tests --target wasm32-unknown-unknown --locked -- -D warnings
cargo clippy -p bevy_fast_rtc --lib --example multiplayer --example rollback --features ggrs,replicon --target wasm32-unknown-unknown --locked -- -D warnings
echo "== cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --locked --quiet --features bevy_fast_rtc/ggrs,bevy_fast_rtc/cpal,bevy_fast_rtc/replicon,fast_rtc_bench/voice
echo "== cargo test"
# (the plugin's voice/ DSP tests: resampling, framing, mixing, bounded queues; its cpal devices: no sound card is a typed error.)
cargo test --workspace --locked --features bevy_fast_rtc/ggrs,bevy_fast_rtc/cpal,bevy_fast_rtc/replicon,fast_rtc_bench/voice
echo "== cluster: several server instances sharing rooms over a real Redis"
./scripts/redis-test.sh
echo "== fuzzing, bounded (cargo-fuzz: hub_frames and core_inputs, 20 s each)"
./scripts/fuzz.sh 20
echo "== browser tests (headless Chromium and Firefox)"
./scripts/browser-test.sh
echo "== TURN: native members in network namespaces linked only through a real coturn"
./scripts/turn-test.sh
echo "== TURN on loopback: a wrong password is a typed fault, the right one links relay to relay"
./scripts/turn-loopback-test.sh
echo "== network lab: members in namespaces across a user-space WAN (delay, loss, NATs), coturn"
./scripts/netlab-test.sh
echo "== multiplayer example, headless, 3 bots, voice (must meet and hear every bot and exit 0)"
cargo run --locked --features voice --example multiplayer -- --headless --bots 3 --seconds 10
echo "== rollback example, headless, 2 bots (a 3-player bevy_ggrs match with no desync)"
cargo run --locked --features ggrs --example rollback -- --headless --players 3 --bots 2 --seconds 8

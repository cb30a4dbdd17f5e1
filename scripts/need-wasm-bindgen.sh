#!/usr/bin/env bash
# Installs what turns a wasm32 build into a page, if it is missing: the wasm32-unknown-unknown
# target, and wasm-bindgen-cli (wasm-bindgen, wasm-bindgen-test-runner) at exactly the version
# of the wasm-bindgen crate in Cargo.lock: the CLI refuses a module built against another
# version ("schema version"), so it is never whatever an installer's own lock brings.
# Called by scripts/setup-browser.sh and scripts/web.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1; then
    rustup target add wasm32-unknown-unknown >/dev/null 2>&1
fi
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
have_runner=$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$want" != "$have" ] || [ "$want" != "$have_runner" ]; then
    echo "== installing wasm-bindgen-cli $want (the wasm-bindgen of Cargo.lock)"
    # Not --locked: its lock file pins a webpki-roots release the registry no longer serves.
    # Its own dependencies do not matter; its version, which must equal ours, is exact.
    cargo install --quiet wasm-bindgen-cli --version "=$want"
fi

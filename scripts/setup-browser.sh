#!/usr/bin/env bash
# Installs what the browser tests need, if it is missing: Debian's chromium and chromium-driver,
# and iproute2/util-linux for the tests' network namespace (apt, as root or through sudo); the
# wasm32-unknown-unknown target; wasm-bindgen-cli at the version of the wasm-bindgen crate in
# Cargo.lock (the test runner must match it exactly); and the npm packages of the interop test,
# bundled for its page.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
    || ! command -v ip >/dev/null || ! command -v unshare >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium chromium-driver iproute2 util-linux
fi
rustup target add wasm32-unknown-unknown >/dev/null
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print }' Cargo.lock)
have=$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$want" != "$have" ]; then
    # Not --locked: its lock file pins a webpki-roots release the registry no longer serves.
    cargo install wasm-bindgen-cli --version "$want"
fi

# The JavaScript reference client, bundled for the interop tests' pages (generated, not
# committed): interop.js for the wasm test (web_interop.rs), harness.js for the native <-> JS
# test (js_native_interop.rs).
(cd scripts/browser/js && npm ci --no-audit --no-fund --loglevel=error)
scripts/browser/js/node_modules/.bin/esbuild scripts/browser/js/interop.js scripts/browser/js/harness.js \
    --bundle --format=esm --log-level=warning --entry-names='[name].bundle' \
    --outdir=crates/fast_rtc_swarm/tests/js

#!/usr/bin/env bash
# Installs what the browser tests need, if it is missing: Debian's chromium, chromium-driver and
# firefox-esr, and iproute2/util-linux for the tests' network namespace (apt, as root or
# through sudo); geckodriver (cargo install, an exact version); the wasm32-unknown-unknown
# target and wasm-bindgen-cli at the version of the wasm-bindgen crate in Cargo.lock (the test
# runner must match it exactly: scripts/need-wasm-bindgen.sh); and the npm packages of the
# interop test, bundled for its page.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
    || ! command -v firefox-esr >/dev/null \
    || ! command -v ip >/dev/null || ! command -v unshare >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium chromium-driver firefox-esr \
        iproute2 util-linux
fi
# geckodriver 0.37.1, the newest, drives Debian's firefox-esr (153 here); built from the
# registry with its own lock file (about 3 minutes on 2 cores, once).
geckodriver_version=0.37.1
if [ "$(geckodriver --version 2>/dev/null | awk 'NR == 1 { print $2 }')" != "$geckodriver_version" ]; then
    cargo install --quiet geckodriver --version "=$geckodriver_version" --locked
fi
./scripts/need-wasm-bindgen.sh

# The JavaScript reference client, bundled for the interop tests' pages (generated, not
# committed): interop.js for the wasm test (web_interop.rs), harness.js for the native <-> JS
# test (js_native_interop.rs).
(cd scripts/browser/js && npm ci --no-audit --no-fund --loglevel=error)
scripts/browser/js/node_modules/.bin/esbuild scripts/browser/js/interop.js scripts/browser/js/harness.js \
    --bundle --format=esm --log-level=warning --entry-names='[name].bundle' \
    --outdir=crates/fast_rtc_swarm/tests/js

#!/usr/bin/env bash
# Browser tests, in headless Chromium and in headless Firefox: the swarm's wasm backend through
# a real signaling server started here on a free loopback port, with native members beside it
# and the JavaScript reference client in the page; native members beside JS reference-client
# members in a browser page (tests/js_native_interop.rs), and in one room with a Chromium page
# and a Firefox page; and voice between the page and native members (tests/web_voice.rs,
# examples/voice_peer.rs: feature voice, which needs cmake). Called by scripts/test.sh.
# FAST_RTC_BROWSERS picks the browsers (default "chromium firefox").
#
# Needs what scripts/setup-browser.sh installs (test.sh runs it first): Debian's chromium,
# chromium-driver and firefox-esr, geckodriver, the wasm32-unknown-unknown target,
# wasm-bindgen-cli at the version of the wasm-bindgen crate in Cargo.lock, and the bundled JS
# client of the interop test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Everything below runs in a network namespace of its own holding only `lo`: the server, the
# native members, Chromium and the pages can only reach 127.0.0.1, and Chromium's candidates
# are loopback ones (the tests grant it a fake microphone for that; see tests/browser/mod.rs).
if [ -z "${FAST_RTC_BROWSER_NETNS:-}" ]; then
    for flags in -n -rn; do
        if unshare $flags true 2>/dev/null; then
            exec unshare $flags env FAST_RTC_BROWSER_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
        fi
    done
    echo "browser-test: cannot create a network namespace (unshare -n needs root, unshare -rn user namespaces)" >&2
    exit 1
fi
# No network in here: everything cargo needs was fetched by the steps before.
export CARGO_NET_OFFLINE=true

browsers=${FAST_RTC_BROWSERS:-chromium firefox}
tools=(wasm-bindgen-test-runner)
for browser in $browsers; do
    case $browser in
        chromium) tools+=(chromium chromedriver) ;;
        firefox) tools+=(firefox-esr geckodriver) ;;
        *) echo "browser-test: unknown browser $browser (chromium, firefox)" >&2; exit 1 ;;
    esac
done
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || { echo "browser-test: $tool not found (see the header of $0)" >&2; exit 1; }
done
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print }' Cargo.lock)
have=$(wasm-bindgen-test-runner --version | awk '{ print $2 }')
if [ "$want" != "$have" ]; then
    echo "browser-test: wasm-bindgen-test-runner is $have, Cargo.lock has wasm-bindgen $want" >&2
    exit 1
fi

cargo build --quiet --release -p fast_rtc_server
bin="${CARGO_TARGET_DIR:-target}/release/fast-rtc-server"
work=$(mktemp -d)
server_pid=""
echo_pids=()
stop_natives() {
    for p in "${echo_pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    for p in "${echo_pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
    echo_pids=()
}
cleanup() {
    stop_natives
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    if [ "${status:-0}" -ne 0 ]; then
        echo "== server log"; cat "$work/server.log" || true
        echo "== echo_peer log"; cat "$work/echo_peer.log" 2>/dev/null || true
        echo "== voice_peer log"; cat "$work/voice_peer.log" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
head -c 48 /dev/urandom | base64 > "$work/secret"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --listen "127.0.0.1:$port" --secret-file "$work/secret" > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

token() { "$bin" token --secret-file "$work/secret" --sub "$1" --room '*' --ttl 3600; }
export FAST_RTC_WEB_TEST_URL="ws://127.0.0.1:$port/ws"
export FAST_RTC_WEB_TEST_TOKEN_A=$(token web-a)
export FAST_RTC_WEB_TEST_TOKEN_B=$(token web-b)
export FAST_RTC_WEB_TEST_TOKEN_MIXED=$(token web-mixed)
for i in 1 2; do
    export "FAST_RTC_WEB_TEST_TOKEN_JS_$i=$(token js-$i)"
    export "FAST_RTC_WEB_TEST_TOKEN_RUST_$i=$(token rust-$i)"
done

# The native member: echo_peer, copied out of the target directory at once (a shared target
# directory's examples/echo_peer may be overwritten by another checkout's build).
cargo build --quiet -p fast_rtc_swarm --features voice --example echo_peer
cp "${CARGO_TARGET_DIR:-target}/debug/examples/echo_peer" "$work/echo_peer"
export FAST_RTC_ECHO_PEER="$work/echo_peer"
export FAST_RTC_WEB_TEST_TOKEN_TIMING=$(token web-timing)
for room in b2n n2b; do
    export "FAST_RTC_WEB_TEST_TOKEN_VOICE_${room^^}=$(token "web-voice-$room")"
done
cargo build --quiet -p fast_rtc_swarm --features voice --example voice_peer
cp "${CARGO_TARGET_DIR:-target}/debug/examples/voice_peer" "$work/voice_peer"

# The native members of the wasm tests, started afresh for each browser's run.
start_natives() {
    # The native member of the mixed test.
    "$FAST_RTC_ECHO_PEER" --url "ws://127.0.0.1:$port/ws" \
        --token "$(token native-echo)" --room mixed >> "$work/echo_peer.log" 2>&1 &
    echo_pids+=($!)
    # Native members for the timing test: one in room timing-1, three in room timing-3.
    for member in timing-1:t1-0 timing-3:t3-0 timing-3:t3-1 timing-3:t3-2; do
        "$FAST_RTC_ECHO_PEER" --url "ws://127.0.0.1:$port/ws" \
            --token "$(token "native-${member#*:}")" --room "${member%%:*}" >> "$work/echo_peer.log" 2>&1 &
        echo_pids+=($!)
    done
    # The native voice members of tests/web_voice.rs (feature voice: Opus): one that listens to
    # the page (room voice-b2n), one that plays 660 Hz to it (room voice-n2b).
    for room in b2n n2b; do
        tone=()
        [ "$room" = n2b ] && tone=(--tone 660)
        "$work/voice_peer" --url "ws://127.0.0.1:$port/ws" --token "$(token "voice-native-$room")" \
            --room "voice-$room" "${tone[@]}" >> "$work/voice_peer.log" 2>&1 &
        echo_pids+=($!)
    done
    sleep 1 # the native members' offers are parked
}

export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/scripts/browser/webdriver.json"
export WASM_BINDGEN_TEST_TIMEOUT=60
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
status=0
for browser in $browsers; do
    # wasm-bindgen-test-runner drives the browser whose driver is named (GECKODRIVER first).
    case $browser in
        chromium) driver=(CHROMEDRIVER=/usr/bin/chromedriver) ;;
        firefox) driver=(GECKODRIVER="$(command -v geckodriver)") ;;
    esac
    echo "== browser tests (wasm) in $browser"
    start_natives
    env "${driver[@]}" cargo test --locked -p fast_rtc_swarm --target wasm32-unknown-unknown \
        --test web --test web_interop --test web_voice -- --nocapture || status=$?
    stop_natives
done

# Native members (echo_peer processes) and JS reference-client members (a page in a headless
# browser the test starts itself, with webdriver.json's settings) in one room, each test with a
# server of its own. Ignored in a plain `cargo test`; one test at a time (2 cores). The
# known_bug_ tests show an open Chromium bug (see their docs): skipped in Chromium, run in
# Firefox; two_browsers_ (a Chromium page and a Firefox page in one room) runs once, with the
# last browser.
last=${browsers##* }
both=0
[[ " $browsers " == *" chromium "* && " $browsers " == *" firefox "* ]] && both=1
for browser in $browsers; do
    echo "== native <-> JS reference client in $browser"
    skip=()
    [ "$browser" = chromium ] && skip+=(--skip known_bug_)
    [ "$both" = 1 ] && [ "$browser" = "$last" ] || skip+=(--skip two_browsers_)
    FAST_RTC_JS_BROWSER=$browser cargo test --locked -p fast_rtc_swarm --test js_native_interop -- \
        --ignored --test-threads=1 --nocapture "${skip[@]}" || status=$?
    # Voice between a native member (echo_peer --tone) and a JS reference-client member.
    FAST_RTC_JS_BROWSER=$browser cargo test --locked -p fast_rtc_swarm --features voice \
        --test js_native_voice -- --ignored --test-threads=1 --nocapture || status=$?
done
exit "$status"

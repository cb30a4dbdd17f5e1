#!/usr/bin/env bash
# TURN test: two members in two network namespaces that cannot reach each other (two native
# echo_peers, then a native echo_peer and our wasm backend in headless Chromium), linked only
# through a real coturn relay (Debian's `turnserver`) in a third namespace that also runs the
# signaling server. Called by scripts/test.sh; needs root (ip netns), and for the browser part
# what scripts/setup-browser.sh installs (test.sh runs it first).
#
#   p1 (10.201.1.2) --veth-- relay (10.201.1.1 | 10.201.2.1) --veth-- p2 (10.201.2.2)
#
# The relay namespace does not forward, and each player has a route to its own /24 only: the
# script proves that neither player can send to the other before it starts, so a link that
# opens went through TURN. It runs the native pair with relay-only candidates and with all
# candidates, then a native member in p1 with Chromium in p2 (tests/web_turn.rs) likewise, then
# a wrong TURN password, which must fail to link and report SwarmFault::RelayUnavailable.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/need.sh turnserver coturn
for tool in ip turnserver chromium chromedriver wasm-bindgen-test-runner; do
    command -v "$tool" >/dev/null || { echo "turn-test: $tool not found" >&2; exit 1; }
done

cargo build --quiet --release -p fast_rtc_server
cargo build --quiet -p fast_rtc_swarm --example echo_peer
work=$(mktemp -d)
cp "${CARGO_TARGET_DIR:-target}/release/fast-rtc-server" "$work/server"
cp "${CARGO_TARGET_DIR:-target}/debug/examples/echo_peer" "$work/echo_peer"

tag="frtc$$"
ns_relay="$tag-relay" ns_p1="$tag-p1" ns_p2="$tag-p2"
pids=()
status=1
cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    # What is left in our namespaces (chromedriver and Chromium, if the browser test timed out).
    for ns in "$ns_p1" "$ns_p2" "$ns_relay"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    done
    wait 2>/dev/null || true
    for ns in "$ns_p1" "$ns_p2" "$ns_relay"; do ip netns del "$ns" 2>/dev/null || true; done
    if [ "$status" -ne 0 ]; then
        for f in "$work"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 40 "$f"; }; done
    fi
    rm -rf "$work"
}
trap cleanup EXIT

for ns in "$ns_relay" "$ns_p1" "$ns_p2"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
for i in 1 2; do
    ns="$tag-p$i"
    ip link add "${tag}r$i" netns "$ns_relay" type veth peer name "${tag}p$i" netns "$ns"
    ip -n "$ns_relay" addr add "10.201.$i.1/24" dev "${tag}r$i"
    ip -n "$ns_relay" link set "${tag}r$i" up
    ip -n "$ns" addr add "10.201.$i.2/24" dev "${tag}p$i"
    ip -n "$ns" link set "${tag}p$i" up
done
ip netns exec "$ns_relay" sysctl -qw net.ipv4.ip_forward=0

echo "== the players have no route to each other (a UDP probe fails), only to the relay"
probe() { ip netns exec "$1" bash -c "exec 3<>/dev/udp/$2/9 && echo probe >&3" 2>/dev/null; }
probe "$ns_p1" 10.201.1.1 || { echo "turn-test: p1 cannot reach the relay" >&2; exit 1; }
probe "$ns_p2" 10.201.2.1 || { echo "turn-test: p2 cannot reach the relay" >&2; exit 1; }
if probe "$ns_p1" 10.201.2.2 || probe "$ns_p2" 10.201.1.2; then
    echo "turn-test: a player can reach the other directly; the test would not prove relaying" >&2
    exit 1
fi

user="player" pass=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
ip netns exec "$ns_relay" turnserver --no-cli --no-tls --no-dtls --lt-cred-mech \
    --user "$user:$pass" --realm fast-rtc.test --listening-ip 10.201.1.1 --listening-ip 10.201.2.1 \
    --relay-ip 10.201.1.1 --listening-port 3478 --allowed-peer-ip 10.201.0.0-10.201.255.255 \
    --log-file stdout --pidfile "$work/turn.pid" \
    --fingerprint > "$work/turn.log" 2>&1 &
pids+=($!)
head -c 48 /dev/urandom | base64 > "$work/secret"
ip netns exec "$ns_relay" "$work/server" serve --listen 0.0.0.0:8787 --secret-file "$work/secret" \
    > "$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
    ip netns exec "$ns_p1" bash -c '(exec 3<>/dev/tcp/10.201.1.1/8787)' 2>/dev/null && break
    sleep 0.1
done
token() { "$work/server" token --secret-file "$work/secret" --sub "$1" --room '*' --ttl 3600; }

# run NAME ROOM CREDENTIAL EXTRA...: both players in ROOM; waits (bounded) for both to log the
# other's echo, or until 20 s pass. Returns 0 if both got the echo of their hello.
run() {
    local name=$1 room=$2 cred=$3; shift 3
    local out=()
    for i in 1 2; do
        ip netns exec "$tag-p$i" env NO_COLOR=1 RUST_LOG=warn,fast_rtc_swarm::platform::native::peer=info \
            "$work/echo_peer" --json --fast-only \
            --url "ws://10.201.$i.1:8787/ws" --token "$(token "$name-$i")" --room "$room" \
            --bind "10.201.$i.2:0" --ice-server "turn:10.201.$i.1:3478?transport=udp" \
            --ice-username "$user" --ice-credential "$cred" "$@" \
            > "$work/$name-$i.log" 2> "$work/$name-$i.err.log" &
        out+=($!)
        pids+=($!)
        sleep 0.3
    done
    local ok=1
    for _ in $(seq 200); do
        if grep -q '"text":"echo:hello from native"' "$work/$name-1.log" \
            && grep -q '"text":"echo:hello from native"' "$work/$name-2.log"; then
            ok=0; break
        fi
        sleep 0.1
    done
    kill "${out[@]}" 2>/dev/null || true
    return $ok
}

# through_relay LOG: the native's selected pair (logged by the native backend from webrtc-rs's
# stats) has a relay end, or its remote end is at the relay's address (coturn relays from
# 10.201.1.1), or its remote end is peer-reflexive: learned from a check, which webrtc-rs 0.21.1
# lists under no stats entry (`remote=unknown`). The probe above proved the players have no
# route to each other, so a check can only have come from a relayed address. The two ends of
# one link must still show a relay candidate on at least one side (local_relay_on_one_side).
through_relay() {
    grep 'selected candidate pair' "$1" | grep -Eq 'local=relay|remote=relay|remote_addr=10\.201\.1\.1:|remote=unknown'
}
local_relay_on_one_side() {
    cat "$@" | grep 'selected candidate pair' | grep -q 'local=relay'
}

echo "== native <-> native through coturn, relay-only"
run relay room-relay "$pass" --relay-only || { echo "turn-test: relay-only pair did not exchange data" >&2; exit 1; }
# The native backend logs the selected pair's candidate types (from webrtc-rs's stats).
for i in 1 2; do
    grep -q 'selected candidate pair.*local=relay' "$work/relay-$i.err.log" \
        || { echo "turn-test: p$i's selected pair is not a local relay one" >&2; exit 1; }
done
echo "== native <-> native through coturn, all candidates (host pairs cannot work)"
run all room-all "$pass" || { echo "turn-test: all-candidates pair did not exchange data" >&2; exit 1; }
for i in 1 2; do
    through_relay "$work/all-$i.err.log" \
        || { echo "turn-test: p$i's selected pair (all candidates) does not go through the relay" >&2; exit 1; }
done
local_relay_on_one_side "$work/all-1.err.log" "$work/all-2.err.log" \
    || { echo "turn-test: neither end of the all-candidates link selected its relay candidate" >&2; exit 1; }
# A native member (p1) and our wasm backend in headless Chromium (p2, started by chromedriver
# through wasm-bindgen-test-runner with webdriver.json's flags, as in browser-test.sh): tests/
# web_turn.rs. The test is built first (its settings are compile-time), then the natives join
# (each parks its offer, which the browser answers), then the test runs inside p2.
echo "== native (p1) <-> our wasm backend in headless Chromium (p2) through coturn, relay-only and all"
export CHROMEDRIVER=/usr/bin/chromedriver
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/scripts/browser/webdriver.json"
export WASM_BINDGEN_TEST_TIMEOUT=60
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
export FAST_RTC_TURN_TEST_URL="ws://10.201.2.1:8787/ws"
export FAST_RTC_TURN_TEST_TOKEN=$(token browser)
export FAST_RTC_TURN_TEST_ICE_URL="turn:10.201.2.1:3478?transport=udp"
export FAST_RTC_TURN_TEST_ICE_USERNAME="$user"
export FAST_RTC_TURN_TEST_ICE_CREDENTIAL="$pass"
export FAST_RTC_TURN_TEST_RELAY_IP=10.201.1.1
web_turn=(cargo test --locked -p fast_rtc_swarm --target wasm32-unknown-unknown --test web_turn)
"${web_turn[@]}" --quiet --no-run
natives=()
for mode in relay all; do
    ip netns exec "$ns_p1" env NO_COLOR=1 RUST_LOG=warn,fast_rtc_swarm::platform::native::peer=info \
        "$work/echo_peer" --json --fast-only \
        --url "ws://10.201.1.1:8787/ws" --token "$(token "native-$mode")" --room "browser-$mode" \
        --bind "10.201.1.2:0" --ice-server "turn:10.201.1.1:3478?transport=udp" \
        --ice-username "$user" --ice-credential "$pass" $([ "$mode" = relay ] && echo --relay-only) \
        > "$work/browser-$mode.log" 2> "$work/browser-$mode.err.log" &
    natives+=($!)
    pids+=($!)
done
sleep 1 # the natives' offers are parked, so the browser answers (either order would link)
started=$(date +%s)
if ! ip netns exec "$ns_p2" env CARGO_NET_OFFLINE=true timeout 150 "${web_turn[@]}" -- --nocapture \
    > "$work/browser-test.log" 2>&1; then
    grep -E -A3 "panicked at|^test .* FAILED" "$work/browser-test.log" >&2 || true
    echo "turn-test: the browser test failed (no link, no data both ways, or a selected pair not through the relay)" >&2; exit 1
fi
grep -E "selected pairs|test result" "$work/browser-test.log" || true
echo "   (browser test: $(( $(date +%s) - started )) s)"
kill "${natives[@]}" 2>/dev/null || true
for mode in relay all; do
    grep -q "\"text\":\"ping from the browser through browser-$mode\"" "$work/browser-$mode.log" \
        || { echo "turn-test: native-$mode did not get the browser's message" >&2; exit 1; }
done
grep -q 'selected candidate pair.*local=relay' "$work/browser-relay.err.log" \
    || { echo "turn-test: native-relay's selected pair (with the browser) is not a local relay one" >&2; exit 1; }
through_relay "$work/browser-all.err.log" \
    || { echo "turn-test: native-all's selected pair (with the browser) does not go through the relay" >&2; exit 1; }
for mode in relay all; do
    echo "   native-$mode: $(grep -o 'selected candidate pair.*' "$work/browser-$mode.err.log" | tr '\n' ' ')"
done

echo "== wrong TURN password, relay-only: no link"
if run bad room-bad "wrong-$pass" --relay-only; then
    echo "turn-test: a wrong TURN password still linked" >&2; exit 1
fi
# coturn refused the allocations (401); webrtc-rs 0.21.1 raises no ICE candidate error for it,
# but the swarm's core sees gathering end without a relay candidate and reports the typed
# SwarmFault::RelayUnavailable (echo_peer prints it as a "fault" line) naming the TURN server.
for i in 1 2; do
    grep 'without a relay candidate from TURN server.*turn:10\.201\.' "$work/bad-$i.log" | grep -q '"type":"fault"' \
        || { echo "turn-test: p$i did not report the wrong TURN password as a fault" >&2; exit 1; }
done
# Informational: coturn's own line (Debian's turnserver.conf may send it to syslog instead).
grep -i 'credentials are incorrect\|401\|unauthori' "$work/turn.log" | head -3 || echo "turn-test: (no refusal line in coturn's log)"
status=0
echo "turn-test: ok"

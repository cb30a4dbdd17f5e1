#!/usr/bin/env bash
# Network lab tests (crates/fast_rtc_netlab): members in network namespaces of their own, joined
# by the lab's user-space WAN (TUN devices; per-link one-way delay, loss, jitter), behind NATs
# made with nftables, the signaling server and coturn on a public site. First the lab itself
# (delay, loss, NAT mappings, teardown, with plain UDP sockets), then real echo_peer members:
# no NAT at 80 ms RTT with 0 and 3 % loss (host pairs), cone NATs with STUN (srflx pairs),
# symmetric NATs with TURN REST credentials (relay pairs), a site renumbered or its NAT rebound
# mid-run (sockets, then a game's reliable stream kept across an ICE restart). Each prints its
# join time and the selected pairs (`netlab:` lines, summed up at the end). Last, a browser
# member across the lab (crates/fast_rtc_swarm/tests/lab_browser.rs): the JS reference client in
# headless Firefox, then Chromium (FAST_RTC_LAB_BROWSERS), with two native members behind cone
# NATs. Called by scripts/test.sh (after scripts/setup-browser.sh installed the browsers and
# bundled the JS client); needs root and /dev/net/tun. FAST_RTC_NETLAB_SEED picks the WAN's loss
# draws (default 1).
#
# Every namespace is named after this run's prefix; the labs delete theirs when they end (also
# when a test fails), and the exit trap deletes whatever a killed run left (`netlab clean`).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/need.sh nft nftables
./scripts/need.sh turnserver coturn
./scripts/need.sh sysctl procps
./scripts/need.sh ip iproute2
./scripts/need.sh conntrack conntrack
[ "$(id -u)" -eq 0 ] || { echo "netlab-test: needs root (network namespaces)" >&2; exit 1; }
[ -c /dev/net/tun ] || { echo "netlab-test: no /dev/net/tun" >&2; exit 1; }

started=$(date +%s)
# The test binaries find fast-rtc-server and echo_peer beside them (same profile).
cargo build --locked --quiet -p fast_rtc_server -p fast_rtc_netlab --bins
cargo build --locked --quiet -p fast_rtc_swarm --example echo_peer
cargo test --locked --quiet -p fast_rtc_netlab --no-run
browsers=${FAST_RTC_LAB_BROWSERS:-firefox chromium}
for browser in $browsers; do
    case $browser in
        firefox) command -v firefox-esr >/dev/null ;;
        chromium) command -v chromium >/dev/null ;;
        *) false ;;
    esac || { echo "netlab-test: no $browser (scripts/setup-browser.sh installs it)" >&2; exit 1; }
done
cargo test --locked --quiet -p fast_rtc_swarm --test lab_browser --no-run
netlab="${CARGO_TARGET_DIR:-target}/debug/netlab"

export FAST_RTC_NETLAB_PREFIX="nl$$"
log=$(mktemp)
test_pid=""
cleanup() {
    [ -n "$test_pid" ] && kill "$test_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    "$netlab" clean "$FAST_RTC_NETLAB_PREFIX" || true
    rm -f "$log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tested=$(date +%s)
# One test at a time: joins are timed, and the machine has 2 cores.
lab_tests() {
    cargo test --locked --quiet -p fast_rtc_netlab -- --ignored --nocapture --test-threads 1 ||
        return 1
    for browser in $browsers; do
        echo "== a $browser member across the lab"
        FAST_RTC_JS_BROWSER=$browser cargo test --locked --quiet -p fast_rtc_swarm \
            --test lab_browser -- --ignored --nocapture || return 1
    done
}
lab_tests > "$log" 2>&1 &
test_pid=$!
status=0
wait "$test_pid" || status=$?
test_pid=""
if [ "$status" -ne 0 ]; then
    cat "$log" >&2
    echo "netlab-test: failed" >&2
    exit 1
fi
echo "== the WAN and the NATs"
grep -oE "(80 ms link RTTs|10 % loss|cone NAT|symmetric NAT|rebind|renumber): .*" "$log" | sed 's/^/   /'
echo "== links (join = the joiner's start to its first open)"
grep -o "netlab: .*" "$log" | sed 's/^/   /'
left=$("$netlab" clean "$FAST_RTC_NETLAB_PREFIX")
[ -z "$left" ] || { echo "netlab-test: the labs left namespaces behind: $left" >&2; exit 1; }
now=$(date +%s)
echo "netlab-test: ok ($(( tested - started )) s building, $(( now - tested )) s testing)"

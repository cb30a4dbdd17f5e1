#!/usr/bin/env bash
# Regenerates docs/browser.png: the multiplayer example running in headless Chromium (WebGL2
# through SwiftShader) in the same room as a native player with two bots.
#
# Needs what scripts/setup-browser.sh installs. The page is the README's browser build, served by
# scripts/web.sh. Every wait is on a readiness signal, bounded: the page's URL answering, the
# page's `data-ready` marker (its module started), then the native player seeing the browser
# player (`peers=3`) and reporting once more (the browser has its states by then).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/browser.png}"
target="${CARGO_TARGET_DIR:-target}"

cargo build --quiet --locked --release -p fast_rtc_server
cargo build --quiet --locked --example multiplayer
cargo build --quiet --locked --profile web --target wasm32-unknown-unknown --example multiplayer

work=$(mktemp -d)
pids=()
cleanup() {
    status=$?
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    if [ "$status" -ne 0 ]; then
        for log in "$work"/*.log; do echo "== $log"; tail -20 "$log"; done
    fi
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_for WHAT TRIES COMMAND...: runs COMMAND every 0.2 s until it succeeds, at most TRIES times.
wait_for() {
    local what=$1 tries=$2
    shift 2
    for _ in $(seq "$tries"); do
        "$@" && return 0
        sleep 0.2
    done
    echo "screenshot: $what: not within $((tries / 5)) s" >&2
    return 1
}
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A signaling server with a fresh secret.
head -c 48 /dev/urandom | base64 > "$work/secret"
port=$(free_port)
"$target/release/fast-rtc-server" serve --listen "127.0.0.1:$port" --secret-file "$work/secret" > "$work/server.log" 2>&1 &
pids+=($!)
wait_for "the signaling server" 50 answers "$port"
url="ws://127.0.0.1:$port/ws"

# The native player (headless) and two bots; they mint their tokens from the secret.
FAST_RTC_SECRET=$(cat "$work/secret") "$target/debug/examples/multiplayer" --url "$url" --room shot \
    --name native-player --headless --bots 2 > "$work/native.log" 2>&1 &
pids+=($!)

# The page, served by scripts/web.sh (the build above is done: it only binds and serves).
web_port=$(free_port)
WEB_ADDR="127.0.0.1:$web_port" ./scripts/web.sh multiplayer > "$work/web.log" 2>&1 &
pids+=($!)
start=$(date +%s%N)
wait_for "the page at 127.0.0.1:$web_port (scripts/web.sh)" 300 answers "$web_port" || { cat "$work/web.log"; exit 1; }
echo "screenshot: page served $(( ($(date +%s%N) - start) / 1000000 )) ms after scripts/web.sh started"
token=$("$target/release/fast-rtc-server" token --secret-file "$work/secret" --sub browser-player --room '*')
page="http://127.0.0.1:$web_port/?signaling=$url&room=shot&token=$token"

# Chromium through chromedriver's WebDriver API: open the page, wait for it, take the screenshot.
driver_port=$(free_port)
chromedriver --port="$driver_port" > "$work/chromedriver.log" 2>&1 &
pids+=($!)
wait_for "chromedriver" 50 answers "$driver_port"
python3 - "$driver_port" "$page" "$out" "$work/native.log" <<'PY'
import base64, json, sys, time, urllib.request
port, page, out, native_log = sys.argv[1:5]
base = f"http://127.0.0.1:{port}"
def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)
def wait_for(what, seconds, check):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    sys.exit(f"screenshot: {what}: not within {seconds} s")
args = ["--headless=new", "--no-sandbox", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic",
        "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--window-size=1280,800",
        "--allow-loopback-in-peer-connection"]
caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}}
session = call("POST", "/session", caps)["value"]["sessionId"]
try:
    start = time.monotonic()
    call("POST", f"/session/{session}/url", {"url": page})
    ready = lambda: call("POST", f"/session/{session}/execute/sync",
                         {"script": "return document.documentElement.dataset.ready || null", "args": []})["value"]
    state = wait_for("the page's module started", 60, ready)
    if state != "true":
        sys.exit(f"screenshot: the page failed to start ({state})")
    print(f"screenshot: page started {time.monotonic() - start:.1f} s after it was opened")
    lines = lambda: open(native_log).read().splitlines()
    # The number of lines once one says peers=3 (the two bots and the browser player).
    met = lambda: (lambda ls: len(ls) if any("peers=3" in l for l in ls) else None)(lines())
    seen = wait_for("the native player seeing the browser player", 60, met)
    wait_for("one more report of the native player", 5, lambda: len(lines()) > seen)
    print(f"screenshot: browser player in the room {time.monotonic() - start:.1f} s after the page was opened")
    shot = call("GET", f"/session/{session}/screenshot")["value"]
    with open(out, "wb") as f:
        f.write(base64.b64decode(shot))
    print(f"screenshot written to {out}")
finally:
    call("DELETE", f"/session/{session}")
PY
grep -E "peers" "$work/native.log" | tail -1 || true

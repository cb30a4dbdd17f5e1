#!/usr/bin/env bash
# Regenerates docs/browser.png: the multiplayer example running in headless Chromium (WebGL2
# through SwiftShader) in the same room as a native player with two bots.
#
# Needs what scripts/setup-browser.sh installs, plus `cargo install wasm-server-runner --version 1.0.1`.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/browser.png}"
target="${CARGO_TARGET_DIR:-target}"

cargo build --quiet --release -p fast_rtc_server
cargo build --quiet --example multiplayer
cargo build --quiet --example multiplayer --target wasm32-unknown-unknown

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# A signaling server with a fresh secret.
head -c 48 /dev/urandom | base64 > "$work/secret"
port=$(free_port)
"$target/release/fast-rtc-server" serve --listen "127.0.0.1:$port" --secret-file "$work/secret" > "$work/server.log" 2>&1 &
pids+=($!)
sleep 0.5
url="ws://127.0.0.1:$port/ws"

# The native player (headless) and two bots; they mint their tokens from the secret.
FAST_RTC_SECRET=$(cat "$work/secret") "$target/debug/examples/multiplayer" --url "$url" --room shot \
    --name native-player --headless --bots 2 > "$work/native.log" 2>&1 &
pids+=($!)

# The page, served by wasm-server-runner.
web_port=$(free_port)
WASM_SERVER_RUNNER_ADDRESS="127.0.0.1:$web_port" wasm-server-runner \
    "$target/wasm32-unknown-unknown/debug/examples/multiplayer.wasm" > "$work/runner.log" 2>&1 &
pids+=($!)
token=$("$target/release/fast-rtc-server" token --secret-file "$work/secret" --sub browser-player --room '*')
page="http://127.0.0.1:$web_port/?signaling=$url&room=shot&token=$token"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$web_port") 2>/dev/null && break; sleep 0.2; done

# Chromium through chromedriver's WebDriver API: open the page, wait, take the screenshot.
driver_port=$(free_port)
chromedriver --port="$driver_port" > "$work/chromedriver.log" 2>&1 &
pids+=($!)
sleep 1
python3 - "$driver_port" "$page" "$out" <<'PY'
import base64, json, sys, time, urllib.request
port, page, out = sys.argv[1], sys.argv[2], sys.argv[3]
base = f"http://127.0.0.1:{port}"
def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)
args = ["--headless=new", "--no-sandbox", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-quic",
        "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--window-size=1280,800",
        "--allow-loopback-in-peer-connection"]
caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}}}
session = call("POST", "/session", caps)["value"]["sessionId"]
try:
    call("POST", f"/session/{session}/url", {"url": page})
    time.sleep(15)  # wasm start-up, joining, peers moving
    shot = call("GET", f"/session/{session}/screenshot")["value"]
    with open(out, "wb") as f:
        f.write(base64.b64decode(shot))
    print(f"screenshot written to {out}")
finally:
    call("DELETE", f"/session/{session}")
PY
grep -E "peers|open" "$work/native.log" | tail -3 || true

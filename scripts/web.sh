#!/usr/bin/env bash
# Serves a demo as a web page: builds the example for wasm32 with the size-optimised `web`
# profile (Cargo.toml), binds it with wasm-bindgen-cli at the exact version of the wasm-bindgen
# crate in Cargo.lock (installed if missing, scripts/need-wasm-bindgen.sh), and serves the page
# (python3's http.server) until Ctrl-C. No wasm-opt: Debian's (binaryen 108) took a minute and
# made the gzip-compressed module no smaller. The page reads `signaling`, `room` and `token`
# from its query string; the native demo prints a ready link when it starts its embedded server.
#
#   scripts/web.sh                                  # the multiplayer demo
#   scripts/web.sh rollback --features ggrs         # EXAMPLE [cargo build arguments]
#   WEB_ADDR=127.0.0.1:8000 scripts/web.sh          # another address (default 127.0.0.1:1334)
#   WEB_PROFILE=dev scripts/web.sh                  # a quicker build, a far larger page
#   scripts/web.sh path/to/app.wasm                 # serve a module already built (this is
#                                                   # also the wasm32 runner of `cargo run`)
#
# The page sets `data-ready` on <html> once the module has started (`error` if it failed), for
# scripts that drive it (scripts/screenshot.sh).
set -euo pipefail
# A module's path (the runner's argument) is relative to where cargo ran.
[[ "${1:-}" == *.wasm ]] && set -- "$(realpath "$1")" "${@:2}"
cd "$(dirname "$0")/.."
addr="${WEB_ADDR:-127.0.0.1:1334}"
target="${CARGO_TARGET_DIR:-target}"

case "${1:-}" in
    *.wasm)
        wasm=$1
        name=$(basename "$wasm" .wasm)
        ;;
    *)
        name=${1:-multiplayer}
        shift || true
        profile="${WEB_PROFILE:-web}"
        cargo build --locked --profile "$profile" --target wasm32-unknown-unknown --example "$name" "$@"
        dir=$profile
        [ "$profile" = dev ] && dir=debug
        wasm="$target/wasm32-unknown-unknown/$dir/examples/$name.wasm"
        ;;
esac
[ -f "$wasm" ] || { echo "web: $wasm not found" >&2; exit 1; }

./scripts/need-wasm-bindgen.sh
./scripts/need.sh python3 python3
out="$target/web/$name"
# The module is bound again only when it (or wasm-bindgen) changed since the last time.
source_id="$(realpath "$wasm") $(stat -c %Y "$wasm") $(wasm-bindgen --version)"
start=$(date +%s%N)
bind_note="bound already"
if [ "$(cat "$out/.source" 2>/dev/null)" != "$source_id" ]; then
    rm -rf "$out"
    mkdir -p "$out"
    wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
        --out-dir "$out" --out-name "$name" "$wasm"
    echo "$source_id" > "$out/.source"
    bind_note="wasm-bindgen took $(( ($(date +%s%N) - start) / 1000000 )) ms"
fi
cat > "$out/index.html" <<HTML
<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bevy_fast_rtc: $name</title>
<link rel="icon" href="data:,">
<style>html, body { margin: 0; height: 100%; overflow: hidden; background: #202020 } canvas { display: block; outline: none }</style>
<script type="module">
import init from "./$name.js";
const root = document.documentElement;
init().then(() => { root.dataset.ready = "true"; }, (e) => {
    root.dataset.ready = "error";
    document.body.textContent = "failed to start: " + e;
    throw e;
});
</script>
</html>
HTML
# Serve first, measure after: the page is up while the sizes are computed.
python3 -u -m http.server --bind "${addr%:*}" --directory "$out" "${addr##*:}" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
echo "web: serving $out on http://$addr/ (Ctrl-C stops it)"
size=$(wc -c < "$out/${name}_bg.wasm")
gz=$(gzip -9 -c "$out/${name}_bg.wasm" | wc -c)
awk -v n="$name" -v s="$size" -v g="$gz" -v note="$bind_note" 'BEGIN {
    printf "web: %s_bg.wasm is %.1f MB, %.1f MB gzip-compressed (%s)\n", n, s / 1e6, g / 1e6, note }'
wait "$server"

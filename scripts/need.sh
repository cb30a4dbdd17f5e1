#!/usr/bin/env bash
# need.sh COMMAND PACKAGE: installs Debian's PACKAGE (apt, as root) unless COMMAND is on PATH,
# then fails unless it is. The test and bench scripts call it for the services they start
# (coturn, redis-server). For a library, COMMAND is `pkg-config:NAME` (a pkg-config module,
# e.g. `pkg-config:alsa` for libasound2-dev, which the `cpal` feature builds against).
set -euo pipefail
cmd=$1 pkg=$2
have() {
    case "$cmd" in
        pkg-config:*) pkg-config --exists "${cmd#pkg-config:}" 2>/dev/null ;;
        *) command -v "$cmd" >/dev/null 2>&1 ;;
    esac
}
if ! have; then
    echo "== installing $pkg"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq "$pkg" >/dev/null
fi
have || { echo "need: $cmd not found (Debian package $pkg)" >&2; exit 1; }

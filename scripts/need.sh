#!/usr/bin/env bash
# need.sh COMMAND PACKAGE: installs Debian's PACKAGE (apt, as root) unless COMMAND is on PATH,
# then fails unless it is. The test and bench scripts call it for the services they start
# (coturn, redis-server).
set -euo pipefail
cmd=$1 pkg=$2
if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "== installing $pkg"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq "$pkg" >/dev/null
fi
command -v "$cmd" >/dev/null || { echo "need: $cmd not found (Debian package $pkg)" >&2; exit 1; }

#!/usr/bin/env bash
# System packages for building and testing on Debian/Ubuntu: Chromium for the browser test,
# Python's scipy as an independent MAT-file reader, Redis for the relay's scale-out tests
# (the tests start their own server on a free port; the package's system service is
# stopped again if apt started one). Rust (cargo) and Node 20 (npm) must be
# installed already (see README).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# The scale-out tests (relay-service/tests/scale_out.rs) start their own redis-server.
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
  if [[ " ${need[*]} " == *" redis-server "* ]] && command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
fi
if ! python3 -c "import scipy" >/dev/null 2>&1; then
  python3 -m pip install -q scipy || $SUDO apt-get install -y -qq python3-scipy
fi
echo "dependencies: ok"

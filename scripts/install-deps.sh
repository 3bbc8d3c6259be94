#!/usr/bin/env bash
# System packages for building and testing on Debian/Ubuntu: Chromium for the browser test,
# Python's scipy as an independent MAT-file reader. Rust (cargo) and Node 20 (npm) must be
# installed already (see README).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
if ! python3 -c "import scipy" >/dev/null 2>&1; then
  python3 -m pip install -q scipy || $SUDO apt-get install -y -qq python3-scipy
fi
echo "dependencies: ok"

#!/usr/bin/env bash
# System packages for building and testing on Debian/Ubuntu: Chromium for the browser test,
# Python's scipy as an independent MAT-file reader, libhdf5 for NWB export (`v1 export nwb`)
# and a virtual environment `.venv-nwb/` with pynwb and nwbinspector that check the
# exported files (nwb/tests/pynwb_reads.rs), Redis for the relay's scale-out tests
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
# NWB export links the system's HDF5 (found through pkg-config).
pkg-config --exists hdf5 2>/dev/null || need+=(libhdf5-dev)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
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
# pynwb and nwbinspector, pinned, in their own environment (the versions the NWB test
# was written against: NWB schema 2.11).
VENV="$(dirname "$0")/../.venv-nwb"
if ! "$VENV/bin/python" -c "import pynwb, nwbinspector, scipy" >/dev/null 2>&1; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q pynwb==4.2.0 nwbinspector==0.7.2 scipy
fi
echo "dependencies: ok"

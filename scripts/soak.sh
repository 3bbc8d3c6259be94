#!/usr/bin/env bash
# Soak benchmark: starts relay-service and simulation-service (release builds, the
# shipped model) on their own ports, drives SOAK_SESSIONS sessions at SOAK_FPS frames/s
# for SOAK_SECONDS with v1-loadgen, then stops both. Reports lost frames, latency
# percentiles and the services' peak memory; the JSON lines go to target/soak/.
# SOAK_FLOODERS=N adds N hostile clients sending 4000x4000 16-bit PNGs beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/default}
SESSIONS=${SOAK_SESSIONS:-4}
SECONDS_=${SOAK_SECONDS:-600}
FPS=${SOAK_FPS:-30}
FLOODERS=${SOAK_FLOODERS:-0}
RELAY_BIND=${SOAK_RELAY_BIND:-127.0.0.1:18080}
SIM_BIND=${SOAK_SIM_BIND:-127.0.0.1:18081}
mkdir -p target/soak
LOG=target/soak/soak-$(date -u +%Y%m%dT%H%M%SZ)
MAX_SESSIONS=$((SESSIONS + FLOODERS + 8))
source scripts/bench-services.sh
echo "soak: $SESSIONS sessions x $FPS fps for $SECONDS_ s, $FLOODERS flooders (relay pid $relay_pid, simulation pid $sim_pid); $(nproc) cores; $(date -u)" | tee "$LOG.summary"
target/release/v1-loadgen --relay "$RELAY_BIND" --sim "$SIM_BIND" --sessions "$SESSIONS" --fps "$FPS" --flooders "$FLOODERS" \
  --duration "$SECONDS_" --grace 5 --watch-pid "$relay_pid" --watch-pid "$sim_pid" >"$LOG.json" 2> >(tee -a "$LOG.summary" >&2)
echo "results: $LOG.json, $LOG.summary" >&2

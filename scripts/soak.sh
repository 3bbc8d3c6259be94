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
for bin in relay-service simulation-service v1-loadgen; do
  if [ ! -x "target/release/$bin" ]; then
    echo "error: target/release/$bin is missing; run 'make build' first." >&2
    exit 1
  fi
done
if [ ! -f "$MODEL/model.json" ]; then
  echo "error: no model in $MODEL (model.json missing). Train one with 'make train-default'." >&2
  exit 1
fi
export V1_SHARED_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir -p target/soak
stamp=$(date -u +%Y%m%dT%H%M%SZ)
log=target/soak/soak-$stamp
pids=()
stop() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap 'stop; exit 1' INT TERM
trap stop EXIT
RUST_LOG=${RUST_LOG:-warn} target/release/relay-service --bind "$RELAY_BIND" --model "$MODEL" \
  --max-sessions-per-client "$((SESSIONS + FLOODERS + 8))" 2>"$log.relay.log" &
relay_pid=$!
pids+=($relay_pid)
RUST_LOG=${RUST_LOG:-warn} target/release/simulation-service --bind "$SIM_BIND" --model "$MODEL" \
  --relay-url "ws://$RELAY_BIND/ws/ingest" 2>"$log.sim.log" &
sim_pid=$!
pids+=($sim_pid)
ready=0
for _ in $(seq 1 150); do
  if curl -fsS "http://$RELAY_BIND/healthz" >/dev/null 2>&1 && curl -fsS "http://$SIM_BIND/healthz" 2>/dev/null | grep -q '"relay_connected":true'; then
    ready=1
    break
  fi
  sleep 0.2
done
if [ "$ready" != 1 ]; then
  echo "error: the services did not become healthy within 30 s; see $log.relay.log and $log.sim.log" >&2
  exit 1
fi
echo "soak: $SESSIONS sessions x $FPS fps for $SECONDS_ s, $FLOODERS flooders (relay pid $relay_pid, simulation pid $sim_pid); $(nproc) cores; $(date -u)" | tee "$log.summary"
target/release/v1-loadgen --relay "$RELAY_BIND" --sim "$SIM_BIND" --sessions "$SESSIONS" --fps "$FPS" --flooders "$FLOODERS" \
  --duration "$SECONDS_" --grace 5 --watch-pid "$relay_pid" --watch-pid "$sim_pid" >"$log.json" 2> >(tee -a "$log.summary" >&2)
echo "results: $log.json, $log.summary" >&2

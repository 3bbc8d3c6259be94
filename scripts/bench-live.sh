#!/usr/bin/env bash
# Live-loop benchmark: starts relay-service and simulation-service (release builds, the
# shipped model, and the wide-field model when there is one) on their own ports and sweeps
# v1-loadgen over session counts, each session a browser sending 320x240 JPEGs at 30
# frames/s. Per run: frames lost, latency percentiles, and each service's CPU time per
# frame, with the population and trial mode measured. Results go to target/bench-live/.
#   BENCH_SWEEP=1,8,16,24,32,40   session counts, in turn (stops at the first not held)
#   BENCH_SECONDS=10              seconds measured per run
#   BENCH_P99_MS=50               a run holds when nothing is lost and p99 is under this
#   SERVICE_BIN=target/release    where the two service binaries are (another build's to
#                                 compare it, with the same load generator)
#   BENCH_PROFILE=16              also profile both services with `perf record` during a
#                                 run of that many sessions (needs perf); the reports
#                                 (top functions by CPU, children excluded) go beside the JSON
#   WIDE_MODEL=models/wide        the wide-field model, given to both services (--wide-model)
#                                 when it holds a model.json ('make train-wide' writes out/wide);
#                                 empty: neither loads one (a SERVICE_BIN build without it)
#   BENCH_POPULATION=pvc1         the population every frame asks for: pvc1 (the pvc-1 array)
#                                 or wide (the wide-field model, over the whole 320x240 frame;
#                                 needs WIDE_MODEL)
#   BENCH_TRIAL=mean              mean (the predicted mean counts) or single (one Poisson draw
#                                 per count, like a recorded trial)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/default}
SWEEP=${BENCH_SWEEP:-1,8,16,24,32,40}
SECONDS_=${BENCH_SECONDS:-10}
P99=${BENCH_P99_MS:-50}
PROFILE=${BENCH_PROFILE:-}
WIDE_MODEL=${WIDE_MODEL-models/wide}
POPULATION=${BENCH_POPULATION:-pvc1}
TRIAL=${BENCH_TRIAL:-mean}
case "$POPULATION" in
  pvc1) ;;
  wide)
    if [ -z "$WIDE_MODEL" ] || [ ! -f "$WIDE_MODEL/model.json" ]; then
      echo "error: BENCH_POPULATION=wide needs the wide-field model, and WIDE_MODEL=${WIDE_MODEL:-(empty)} holds no model.json; train one with 'make train-wide' and pass WIDE_MODEL=out/wide, or measure BENCH_POPULATION=pvc1." >&2
      exit 1
    fi
    ;;
  *)
    echo "error: BENCH_POPULATION=$POPULATION is not a population; use pvc1 (the pvc-1 array) or wide (the wide-field model in WIDE_MODEL)." >&2
    exit 1
    ;;
esac
case "$TRIAL" in
  mean | single) ;;
  *)
    echo "error: BENCH_TRIAL=$TRIAL is not a trial mode; use mean (the predicted mean counts) or single (one Poisson draw per count)." >&2
    exit 1
    ;;
esac
RELAY_BIND=${BENCH_RELAY_BIND:-127.0.0.1:18180}
SIM_BIND=${BENCH_SIM_BIND:-127.0.0.1:18181}
mkdir -p target/bench-live
LOG=target/bench-live/live-$(date -u +%Y%m%dT%H%M%SZ)
MAX_SESSIONS=1024
source scripts/bench-services.sh
echo "live loop ($SERVICE_BIN): population $POPULATION, trial $TRIAL (wide model: ${wide_args[1]:-none}); sweep $SWEEP, $SECONDS_ s each, p99 < $P99 ms (relay pid $relay_pid, simulation pid $sim_pid); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg); $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $(date -u)" | tee "$LOG.summary"
target/release/v1-loadgen --relay "$RELAY_BIND" --sim "$SIM_BIND" --sweep "$SWEEP" --duration "$SECONDS_" --p99-limit-ms "$P99" \
  --population "$POPULATION" --trial "$TRIAL" \
  --watch-pid "$relay_pid" --watch-pid "$sim_pid" >"$LOG.json" 2> >(tee -a "$LOG.summary" >&2)
if [ -n "$PROFILE" ]; then
  if ! command -v perf >/dev/null; then
    echo "error: BENCH_PROFILE needs perf (apt-get install linux-perf)" >&2
    exit 1
  fi
  echo "profiling $PROFILE sessions with perf (999 Hz, call graphs)" | tee -a "$LOG.summary"
  perf record -F 999 -g -o "$LOG.relay.perf" -p "$relay_pid" 2>/dev/null &
  perf_relay=$!
  perf record -F 999 -g -o "$LOG.sim.perf" -p "$sim_pid" 2>/dev/null &
  perf_sim=$!
  sleep 1
  target/release/v1-loadgen --relay "$RELAY_BIND" --sim "$SIM_BIND" --sessions "$PROFILE" --duration "$SECONDS_" --p99-limit-ms "$P99" \
    --population "$POPULATION" --trial "$TRIAL" \
    --watch-pid "$relay_pid" --watch-pid "$sim_pid" >>"$LOG.json" 2> >(tee -a "$LOG.summary" >&2)
  kill -INT "$perf_relay" "$perf_sim"
  wait "$perf_relay" "$perf_sim" 2>/dev/null || true
  for s in relay sim; do
    perf report -i "$LOG.$s.perf" --no-children --percent-limit 0.7 --stdio --sort dso,symbol 2>/dev/null \
      | grep -v '^$' | grep -E '^ +[0-9]' >"$LOG.$s.profile.txt" || true
    echo "== $s: top functions (self time) ==" | tee -a "$LOG.summary"
    head -25 "$LOG.$s.profile.txt" | tee -a "$LOG.summary"
  done
fi
echo "results: $LOG.json, $LOG.summary" >&2

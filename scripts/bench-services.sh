# Sourced by the service benchmarks (scripts/soak.sh, scripts/bench-live.sh): checks the
# release binaries and the model, then starts relay-service and simulation-service on
# their own ports with a fresh shared secret, waits until both are healthy and the relay
# link is up, and stops both when the calling script exits. Sets relay_pid and sim_pid.
# Inputs: MODEL, RELAY_BIND, SIM_BIND, LOG (path prefix of the services' logs),
# MAX_SESSIONS (sessions one client may open on the relay), and optionally SERVICE_BIN:
# the folder of the two service binaries (default target/release; another build's, to
# measure it beside this one with the same load generator), RELAY_ARGS and SIM_ARGS:
# extra options for each service (e.g. "--workers 1"), WIDE_MODEL: the wide-field model's
# folder, given to both services as --wide-model when it holds a model.json (unset or
# empty: neither service loads one; scripts/bench-live.sh sets it, models/wide by default).
# Sets wide_args to the options that named it (empty without one).
SERVICE_BIN=${SERVICE_BIN:-target/release}
for bin in "$SERVICE_BIN/relay-service" "$SERVICE_BIN/simulation-service" target/release/v1-loadgen; do
  if [ ! -x "$bin" ]; then
    echo "error: $bin is missing; run 'make build' first." >&2
    exit 1
  fi
done
if [ ! -f "$MODEL/model.json" ]; then
  echo "error: no model in $MODEL (model.json missing). Train one with 'make train-default'." >&2
  exit 1
fi
wide_args=()
if [ -n "${WIDE_MODEL:-}" ] && [ -f "$WIDE_MODEL/model.json" ]; then
  wide_args=(--wide-model "$WIDE_MODEL")
fi
export V1_SHARED_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
pids=()
stop() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap 'stop; exit 1' INT TERM
trap stop EXIT
RUST_LOG=${RUST_LOG:-warn} "$SERVICE_BIN/relay-service" --bind "$RELAY_BIND" --model "$MODEL" "${wide_args[@]}" \
  --max-sessions-per-client "$MAX_SESSIONS" ${RELAY_ARGS:-} 2>"$LOG.relay.log" &
relay_pid=$!
pids+=($relay_pid)
RUST_LOG=${RUST_LOG:-warn} "$SERVICE_BIN/simulation-service" --bind "$SIM_BIND" --model "$MODEL" "${wide_args[@]}" \
  --relay-url "ws://$RELAY_BIND/ws/ingest" ${SIM_ARGS:-} 2>"$LOG.sim.log" &
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
  echo "error: the services did not become healthy within 30 s; see $LOG.relay.log and $LOG.sim.log" >&2
  exit 1
fi

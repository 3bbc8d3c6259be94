#!/usr/bin/env bash
# Starts relay-service and simulation-service with the shipped model at once, prints the
# URL, and stops both on Ctrl-C. The dataset Recorded mode replays (the default simulated
# one, made once) is prepared beside them by scripts/prepare-data.sh: its log goes to
# $DATA/prepare.log with a line a minute shown here, the page says how far it is, and
# Recorded mode turns on by itself when it is ready. When $WIDE_MODEL (default models/wide)
# holds a model, both services also get it (--wide-model): the page then offers the
# wide-field population beside the pvc-1 array.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/default}
DATA=${DATA:-data/default}
WIDE_MODEL=${WIDE_MODEL:-models/wide}
RELAY_BIND=${V1_RELAY_BIND:-127.0.0.1:8080}
SIM_BIND=${V1_SIM_BIND:-127.0.0.1:8081}
if [ ! -f "$MODEL/model.json" ]; then
  echo "error: no model in $MODEL (model.json missing). Train one with 'make train-default'." >&2
  exit 1
fi
wide_args=()
if [ -f "$WIDE_MODEL/model.json" ]; then
  wide_args=(--wide-model "$WIDE_MODEL")
fi
# Both services must share one secret: the relay accepts responses only from simulation
# services that present it. It goes to both through the environment and is never printed
# (whoever holds it can mint session tokens).
export V1_SHARED_SECRET=${V1_SHARED_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
pids=()
prep=
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for p in "${pids[@]}" $prep; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
}
trap 'stop; exit 0' INT TERM
trap stop EXIT
mkdir -p "$DATA"
log="$DATA/prepare.log"
: >"$log"
# Its output goes to the log, and through a pipe (not a terminal: a line a minute instead
# of bars) here too.
V1_BIN=target/release/v1 ./scripts/prepare-data.sh "$DATA" "$MODEL" default > >(tee -a "$log" >&2) 2>&1 &
prep=$!
# The simulation-service refuses a data root with neither a cache nor a preparation under
# way, so it starts once the preparation has written its progress file, or has finished.
for _ in $(seq 1 300); do
  [ -f "$DATA/.preparing.json" ] && break
  kill -0 "$prep" 2>/dev/null || break
  sleep 0.1
done
data_args=(--data "$DATA")
if ! kill -0 "$prep" 2>/dev/null && ! wait "$prep"; then
  echo "warning: the dataset for Recorded mode could not be prepared (see $log); starting without it" >&2
  data_args=()
fi
target/release/relay-service --bind "$RELAY_BIND" --model "$MODEL" "${wide_args[@]}" --static-dir frontend/dist &
pids+=($!)
target/release/simulation-service --bind "$SIM_BIND" --model "$MODEL" "${wide_args[@]}" "${data_args[@]}" --relay-url "ws://$RELAY_BIND/ws/ingest" &
pids+=($!)
for _ in $(seq 1 100); do
  if curl -fsS "http://$RELAY_BIND/healthz" >/dev/null 2>&1 && curl -fsS "http://$SIM_BIND/healthz" >/dev/null 2>&1; then
    echo
    echo "  V1 is running: open http://$RELAY_BIND/ and click Thought-to-Image."
    echo "  (simulation-service on http://$SIM_BIND/; Ctrl-C stops both)"
    if [ ${#wide_args[@]} -gt 0 ]; then
      echo "  Wide field: the model in $WIDE_MODEL answers for the population over the whole frame."
    fi
    if kill -0 "$prep" 2>/dev/null; then
      echo "  Recorded mode: preparing its dataset in $DATA (log: $log); the page shows how far."
    fi
    echo
    wait -n "${pids[@]}" || true
    echo "a service exited; see its log above." >&2
    exit 1
  fi
  sleep 0.2
done
echo "error: the services did not become healthy within 20 s; see the logs above." >&2
exit 1

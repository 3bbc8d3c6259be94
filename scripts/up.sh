#!/usr/bin/env bash
# Starts relay-service and simulation-service with the shipped model and the default
# simulated dataset, prints the URL, and stops both on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/default}
DATA=${DATA:-data/default}
RELAY_BIND=${V1_RELAY_BIND:-127.0.0.1:8080}
SIM_BIND=${V1_SIM_BIND:-127.0.0.1:8081}
if [ ! -f "$MODEL/model.json" ]; then
  echo "error: no model in $MODEL (model.json missing). Train one with 'make train-default'." >&2
  exit 1
fi
# Both services must share one secret: the relay accepts responses only from simulation
# services that present it. It goes to both through the environment and is never printed
# (whoever holds it can mint session tokens).
export V1_SHARED_SECRET=${V1_SHARED_SECRET:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
echo "preparing the dataset cache for recorded mode (once)..."
target/release/v1 build --data "$DATA" --config "$MODEL/config.toml" >/dev/null
pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
}
trap 'stop; exit 0' INT TERM
trap stop EXIT
target/release/relay-service --bind "$RELAY_BIND" --model "$MODEL" --static-dir frontend/dist &
pids+=($!)
target/release/simulation-service --bind "$SIM_BIND" --model "$MODEL" --data "$DATA" --relay-url "ws://$RELAY_BIND/ws/ingest" &
pids+=($!)
for _ in $(seq 1 100); do
  if curl -fsS "http://$RELAY_BIND/healthz" >/dev/null 2>&1 && curl -fsS "http://$SIM_BIND/healthz" >/dev/null 2>&1; then
    echo
    echo "  V1 is running: open http://$RELAY_BIND/ and click Thought-to-Image."
    echo "  (simulation-service on http://$SIM_BIND/; Ctrl-C stops both)"
    echo
    wait -n "${pids[@]}" || true
    echo "a service exited; see its log above." >&2
    exit 1
  fi
  sleep 0.2
done
echo "error: the services did not become healthy within 20 s; see the logs above." >&2
exit 1

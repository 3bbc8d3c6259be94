#!/usr/bin/env bash
# End-to-end test: the real relay-service and simulation-service, a small simulated dataset
# and a small model trained on it, driven by Chromium through the built frontend.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
v1=target/release/v1
echo "e2e: simulating a small dataset and training a small model in $work"
"$v1" simulate --out "$work/data" --preset small >/dev/null
"$v1" train --data "$work/data" --out "$work/model" --preset small --no-upper-bound >/dev/null 2>"$work/train.log" || { cat "$work/train.log"; exit 1; }
# The simulation-service starts on a data root whose preparation is still under way (only
# the progress file `v1 build` keeps there); the test then finishes it by moving the cache
# that training built into place, as `v1 build` would, and expects Recorded mode to turn on.
mkdir -p "$work/preparing"
printf '{"phase":"building the cache","percent":40,"updated_unix":%s}\n' "$(date +%s)" >"$work/preparing/.preparing.json"
export RELAY_BIN="$PWD/target/release/relay-service"
export SIM_BIN="$PWD/target/release/simulation-service"
export V1_MODEL_DIR="$work/model"
# The shipped wide-field model (both services read V1_WIDE_MODEL), so that the page's
# wide-field population runs against the real services and the real population; the small
# model stands in for it in a checkout without one.
if [ -f models/wide/model.json ]; then
  export V1_WIDE_MODEL="$PWD/models/wide"
else
  export V1_WIDE_MODEL="$work/model"
fi
export V1_DATA_DIR="$work/preparing"
export V1_PREPARED_CACHE_DIR="$work/data/cache"
cd frontend
npm run e2e

#!/bin/sh
# Entrypoint of the simulation image: starts simulation-service at once (arguments are
# passed on to it) and prepares the dataset for Recorded mode beside it.
#
# The dataset folder is $V1_DATA (default /data, the compose file's data volume):
#   - holds a dataset (a simulated one with ground_truth/COMPLETE, a pvc-1 tree in
#     crcns-ringach-data/, or .nwb files): its cache is built once for the model, in the
#     background;
#   - is empty and V1_DATA_AUTOGEN=1 (the default): the $V1_DATA_PRESET dataset is simulated
#     into it in the background first (`default`: ~10 minutes on two cores and ~1.5 GB,
#     once per volume);
#   - is empty and V1_DATA_AUTOGEN=0: the service starts without a dataset and answers
#     image stimuli only.
# Meanwhile the service answers images, and says how far the preparation is (`recorded`
# in /api/info, shown on the page); it turns the random, dataset and recorded sources on
# by itself when the cache is ready. The preparation logs to the container's output, a
# line a minute (v1-prepare-data, scripts/prepare-data.sh in the repository).
set -eu

data=${V1_DATA:-/data}
model=${V1_MODEL:-/opt/v1/model}
preset=${V1_DATA_PRESET:-default}
autogen=${V1_DATA_AUTOGEN:-1}

say() { echo "v1-simulation: $*" >&2; }
if [ ! -f "$model/model.json" ] || [ ! -f "$model/weights.safetensors" ]; then
  say "error: no model in $model (model.json and weights.safetensors are needed)."
  say "Mount a trained model there (docker-compose.yml mounts \$V1_MODEL_DIR, default ./models/default) or set V1_MODEL."
  exit 1
fi
for f in "$model/model.json" "$model/weights.safetensors"; do
  if [ ! -r "$f" ]; then
    say "error: $f is not readable by uid $(id -u); make the model readable for everyone: chmod -R a+rX <model folder>"
    exit 1
  fi
done

case "$autogen" in
  0 | 1) ;;
  *) say "error: V1_DATA_AUTOGEN must be 0 or 1, got '$autogen'"; exit 1 ;;
esac

has_dataset() {
  [ -f "$data/ground_truth/COMPLETE" ] || [ -d "$data/crcns-ringach-data" ] || ls "$data"/*.nwb >/dev/null 2>&1
}

if has_dataset || [ "$autogen" = 1 ]; then
  if ! has_dataset && { ! mkdir -p "$data" 2>/dev/null || [ ! -w "$data" ]; }; then
    say "error: cannot write to $data (running as uid $(id -u)); make the data volume writable for that user or set V1_DATA_AUTOGEN=0"
    exit 1
  fi
  # The preparation runs as a child of the service (exec below keeps this process), so
  # `docker stop` ends both.
  v1-prepare-data "$data" "$model" "$preset" "$autogen" &
  prep=$!
  # The service refuses a data root with neither a cache nor a preparation under way, so
  # it starts once the preparation has written its progress file, or has finished.
  i=0
  while [ ! -f "$data/.preparing.json" ] && kill -0 "$prep" 2>/dev/null && [ "$i" -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
  done
  status=0
  if ! kill -0 "$prep" 2>/dev/null; then
    wait "$prep" || status=$?
  fi
  if [ "$status" = 0 ]; then
    export V1_DATA="$data"
  else
    say "the dataset in $data could not be prepared (see above): starting without the random, dataset and recorded sources"
    unset V1_DATA
  fi
else
  say "no dataset in $data and V1_DATA_AUTOGEN=0: starting without the random, dataset and recorded sources"
  unset V1_DATA
fi

exec simulation-service "$@"

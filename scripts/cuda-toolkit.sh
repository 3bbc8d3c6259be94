#!/usr/bin/env bash
# A CUDA 13.0 build toolkit for `--features cuda` on a machine without one installed:
# nvcc, its headers and the libraries a CUDA build of v1 links (cuBLAS, cuRAND, NVRTC),
# from NVIDIA's wheels on PyPI, and the driver API library (libcuda) from Debian's
# non-free archive, used only to link (at run time the GPU machine's own driver is used).
# A machine with the CUDA toolkit installed (/usr/local/cuda) does not need this.
#
#   scripts/cuda-toolkit.sh [DIR]      default DIR: target/cuda-toolkit (0.6 GB downloaded, 1.9 GB on disk)
#
# then build as the last line printed says (docs/gpu.md).
set -euo pipefail
DIR=${1:-target/cuda-toolkit}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
WHEELS="$DIR/wheels"
ROOT="$DIR/root"
if [ ! -x "$ROOT/bin/nvcc" ]; then
  mkdir -p "$WHEELS"
  echo "cuda-toolkit: downloading the CUDA 13.0 wheels into $WHEELS"
  python3 -m pip download -q --no-deps -d "$WHEELS" \
    "nvidia-cuda-nvcc==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-crt==13.0.*" "nvidia-cuda-cccl==13.0.*" \
    "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-nvrtc==13.0.*" "nvidia-cublas==13.0.*" "nvidia-curand==10.4.0.*"
  rm -rf "$DIR/unpacked" && mkdir -p "$DIR/unpacked"
  for w in "$WHEELS"/*.whl; do python3 -m zipfile -e "$w" "$DIR/unpacked/"; done
  rm -rf "$ROOT" && mv "$DIR/unpacked/nvidia/cu13" "$ROOT" && rm -rf "$DIR/unpacked"
  chmod +x "$ROOT"/bin/* "$ROOT"/nvvm/bin/*
fi
LIB="$ROOT/lib"
if [ ! -e "$LIB/libcuda.so" ]; then
  # libcuda1 from bookworm's non-free component, downloaded (not installed) with a
  # private list of that component only.
  APT="$DIR/apt"
  mkdir -p "$APT/lists/partial" "$APT/debs"
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$APT/non-free.sources"
  opts=(-o Dir::Etc::sourcelist="$APT/non-free.sources" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$APT/lists" -o APT::Sandbox::User=root)
  echo "cuda-toolkit: downloading libcuda1 (link time only) from Debian non-free"
  apt-get -qq "${opts[@]}" update
  (cd "$APT/debs" && apt-get -qq "${opts[@]}" download libcuda1)
  rm -rf "$APT/x" && dpkg-deb -x "$APT"/debs/libcuda1_*.deb "$APT/x"
  real=$(find "$APT/x" -name 'libcuda.so.[0-9]*.*' | head -1)
  cp "$real" "$LIB/"
  ln -sf "$(basename "$real")" "$LIB/libcuda.so"
  rm -rf "$APT/x"
fi
# The build links unversioned names; the wheels carry the versioned ones.
for l in cublas cublasLt nvrtc cudart; do ln -sf "lib$l.so.13" "$LIB/lib$l.so"; done
ln -sf libcurand.so.10 "$LIB/libcurand.so"
"$ROOT/bin/nvcc" --version | tail -2
echo "cuda-toolkit: ready in $ROOT. Build with (CUDA_COMPUTE_CAP: the GPU's compute capability, 90 = H100):"
echo "  CUDA_HOME=$ROOT PATH=$ROOT/bin:\$PATH CUDA_COMPUTE_CAP=90 cargo build --release --features cuda -p v1-cli -p relay-service -p simulation-service --target-dir target/cuda"

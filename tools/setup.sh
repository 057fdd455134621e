#!/usr/bin/env bash
# setup.sh — prepares a fresh Debian 12 machine (as root) to build and test sdnnc, then builds it.
#
#   bash tools/setup.sh                    # Debian packages, .venv (onnx, onnxruntime, numpy), build
#   SDNN_WITH_BENCH=1 bash tools/setup.sh  # also the benchmark peers: libxsmm, oneDNN, OpenBLAS
#                                          # (Debian) and openvino, torch, onnx2torch (PyPI); builds bench/
#
# Idempotent: every step checks first and skips what is already in place, so a re-run on a set-up
# machine needs no network. Only Debian's archive and PyPI are used.
#
# Environment:
#   SDNN_BUILD_DIR    build directory (default: build)
#   SDNN_WITH_BENCH   1 to install the benchmark peers and configure with SDNN_BUILD_BENCH=ON
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${SDNN_BUILD_DIR:-build}"
WITH_BENCH="${SDNN_WITH_BENCH:-0}"
VENV="$ROOT/.venv"

APT_PACKAGES=(cmake g++ make protobuf-compiler libprotobuf-dev libonnx-dev libxbyak-dev catch2
              llvm-14-tools libcli11-dev nlohmann-json3-dev python3-venv binutils)
# oneDNN's CMake config (dnnl-config.cmake) requires OpenCL headers and libOpenCL.so even for its
# CPU-only build: ocl-icd-opencl-dev provides both (it pulls in opencl-c-headers).
APT_BENCH_PACKAGES=(libxsmm-dev libdnnl-dev libopenblas-dev ocl-icd-opencl-dev)
# Pinned to versions published on PyPI with wheels for Python 3.11 (Debian 12's /usr/bin/python3).
PIP_PACKAGES=(numpy==2.3.5 onnx==1.21.0 onnxruntime==1.23.2)
PIP_BENCH_PACKAGES=(openvino==2025.4.1 torch==2.9.1 torchvision==0.24.1 onnx2torch==1.5.15 matplotlib==3.11.2)

step() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }

# apt_install PKG... — installs the packages dpkg does not already report as installed.
apt_install() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    info "already installed: $*"
    return
  fi
  info "installing: ${missing[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# pip_install REQ... — pip-installs into the venv unless every pinned requirement is already met.
pip_install() {
  if "$VENV/bin/python" - "$@" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
for req in sys.argv[1:]:
    name, want = req.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
EOF
  then
    info "already installed: $*"
    return
  fi
  info "installing: $*"
  "$VENV/bin/python" -m pip install --disable-pip-version-check "$@"
}

step "Debian packages"
apt_install "${APT_PACKAGES[@]}"
if [ "$WITH_BENCH" = 1 ]; then
  apt_install "${APT_BENCH_PACKAGES[@]}"
fi

step "Python virtual environment $VENV (from /usr/bin/python3)"
# Reuse .venv only if it works and was made from /usr/bin/python3 (not, say, a pyenv python).
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' 2>/dev/null &&
   grep -qx 'home = /usr/bin' "$VENV/pyvenv.cfg"; then
  info "exists: $("$VENV/bin/python" --version)"
else
  rm -rf "$VENV"
  /usr/bin/python3 -m venv "$VENV"
  info "created: $("$VENV/bin/python" --version)"
fi
pip_install "${PIP_PACKAGES[@]}"
if [ "$WITH_BENCH" = 1 ]; then
  pip_install "${PIP_BENCH_PACKAGES[@]}"
fi

step "Configure ($BUILD_DIR, Release)"
CMAKE_ARGS=(-S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release)
if [ "$WITH_BENCH" = 1 ]; then
  CMAKE_ARGS+=(-DSDNN_BUILD_BENCH=ON)
fi
if ! cmake "${CMAKE_ARGS[@]}"; then
  echo "setup.sh: error: cmake configure failed (see above)" >&2
  exit 1
fi

step "Build (2 jobs)"
if ! cmake --build "$BUILD_DIR" -j2; then
  echo "setup.sh: error: build failed (see above)" >&2
  exit 1
fi

step "Done: $BUILD_DIR/tools/sdnnc and $BUILD_DIR/tools/sdnn-run are built"

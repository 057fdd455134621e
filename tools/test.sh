#!/usr/bin/env bash
# test.sh — sets up and builds (tools/setup.sh), then runs the whole test suite with CTest:
# unit (Catch2), runtime, lit (FileCheck), golden (vs ONNX Runtime) and ONNX node tests.
# Exits with CTest's status. Runs two tests at a time (2 cores), so tests must not share scratch
# files: each writes below its own build folder.
#
# Environment: SDNN_BUILD_DIR (default build), passed on to setup.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${SDNN_BUILD_DIR:-build}"

bash tools/setup.sh

printf '\n==> ctest --test-dir %s\n' "$BUILD_DIR"
exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j2

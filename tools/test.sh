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

# The ONNX node tests print every case (passed / skipped with the reason / failed): run them
# verbosely first so the log lists them, then everything else.
status=0
printf '\n==> ctest --test-dir %s -R onnx_node -V\n' "$BUILD_DIR"
ctest --test-dir "$BUILD_DIR" -R '^onnx_node[.]' -V || status=$?
printf '\n==> ctest --test-dir %s -E onnx_node\n' "$BUILD_DIR"
ctest --test-dir "$BUILD_DIR" -E '^onnx_node[.]' --output-on-failure -j2 || status=$?
exit "$status"

#!/usr/bin/env bash
# quickstart.sh — from a fresh Debian 12 machine to a compiled, running sparse model:
# sets up and builds (tools/setup.sh), generates the bundled example (a 90%-pruned 3-layer MLP,
# models/make_example.py), compiles it with sdnnc, runs it with sdnn-run and compares the output
# with ONNX Runtime's.
#
# Environment: SDNN_BUILD_DIR (default build), passed on to setup.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${SDNN_BUILD_DIR:-build}"
EXAMPLE="$BUILD_DIR/example"
PY="$ROOT/.venv/bin/python"

bash tools/setup.sh

printf '\n==> Generate the example model (%s)\n' "$EXAMPLE"
"$PY" models/make_example.py generate "$EXAMPLE"

printf '\n==> Compile: sdnnc %s/mlp.onnx -o %s/mlp.so\n' "$EXAMPLE" "$EXAMPLE"
"$BUILD_DIR/tools/sdnnc" "$EXAMPLE/mlp.onnx" -o "$EXAMPLE/mlp.so"
ls -l "$EXAMPLE/mlp.so"

printf '\n==> Run: sdnn-run %s/mlp.so --input x=... --output y=...\n' "$EXAMPLE"
"$BUILD_DIR/tools/sdnn-run" "$EXAMPLE/mlp.so" --input "x=$EXAMPLE/input.npy" \
  --output "y=$EXAMPLE/output.npy"

printf '\n==> Compare with ONNX Runtime\n'
"$PY" models/make_example.py compare "$EXAMPLE"

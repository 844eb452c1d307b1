#!/usr/bin/env bash
# Builds the worker bundle into build/ offline: the *_BIN overrides stop
# worker-build from downloading its tools (see ../shared/TOOLCHAIN.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
echo "==> building the worker (worker-build --release)"
WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen" \
WASM_OPT_BIN="$PWD/node_modules/binaryen/bin/wasm-opt" \
ESBUILD_BIN="$PWD/node_modules/.bin/esbuild" \
  worker-build --release

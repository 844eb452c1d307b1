#!/usr/bin/env bash
# Builds the worker bundle into build/ offline: the *_BIN overrides stop
# worker-build from downloading its tools (see ../shared/TOOLCHAIN.md).
#
# Skipped when build/ was made from the same inputs (the crate's sources,
# manifests and the pinned tools' versions; a stamp in build/ records their
# hash): a warm `make dev` or `make test` does not spend ~2 minutes on
# cargo and wasm-opt. FORCE_BUILD=1 builds anyway.
#
# The new bundle is built beside build/ and swapped in with two renames, so
# a `wrangler dev` already running from this checkout reloads a complete
# bundle instead of reading a half-written one.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

inputs() {
  {
    for f in Cargo.toml Cargo.lock .cargo/config.toml; do
      [ -f "$f" ] && printf '%s\n' "$f" && cat "$f"
    done
    find src -type f | LC_ALL=C sort | while read -r f; do printf '%s\n' "$f"; cat "$f"; done
    worker-build --version 2>/dev/null || true
    wasm-bindgen --version 2>/dev/null || true
    node_modules/binaryen/bin/wasm-opt --version 2>/dev/null || true
  } | sha256sum | cut -d' ' -f1
}

SUM=$(inputs)
if [ "${FORCE_BUILD:-}" != 1 ] && [ -f build/index.js ] && [ -f build/index_bg.wasm ] && [ -f build/entry.mjs ] \
   && [ "$(cat build/.podium-inputs 2>/dev/null)" = "$SUM" ]; then
  echo "==> worker bundle is current (build/, same inputs): not rebuilt"
  exit 0
fi

echo "==> building the worker (worker-build --release)"
rm -rf build.next
WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen" \
WASM_OPT_BIN="$PWD/node_modules/binaryen/bin/wasm-opt" \
ESBUILD_BIN="$PWD/node_modules/.bin/esbuild" \
  worker-build --release --out-dir build.next
cp src/js/entry.mjs build.next/entry.mjs
echo "$SUM" > build.next/.podium-inputs
rm -rf build.old
[ -d build ] && mv build build.old
mv build.next build
rm -rf build.old

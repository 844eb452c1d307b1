#!/usr/bin/env bash
# Installs everything the project needs, idempotently; each step is skipped
# when already done. Usage: scripts/setup.sh [--browser]
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.129
say() { printf '\n==> %s\n' "$*"; }
export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! worker-build --version 2>/dev/null | grep -q "$WORKER_BUILD_VERSION"; then
  say "installing worker-build $WORKER_BUILD_VERSION (about 7 minutes on 2 cores)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION" \
   || ! command -v wasm-bindgen-test-runner >/dev/null; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 6 minutes on 2 cores)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --locked
fi

# npm's own node_modules/.package-lock.json never equals the lockfile byte
# for byte, so a stamp written after a successful `npm ci` says what is
# installed: a warm run skips npm (and never deletes the node_modules that a
# running `wrangler dev` of this checkout uses).
LOCK_SUM=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -x node_modules/.bin/wrangler ] || [ ! -x node_modules/.bin/node ] \
   || [ "$(cat node_modules/.podium-lock 2>/dev/null)" != "$LOCK_SUM" ]; then
  say "installing npm packages (npm ci): Node 24 and wrangler come from the lockfile"
  npm ci --no-audit --no-fund
  echo "$LOCK_SUM" > node_modules/.podium-lock
fi

# The TypeScript client (clients/ts) has its own lockfile (openapi-typescript,
# openapi-fetch, typescript, esbuild), installed the same way.
TS_LOCK_SUM=$(sha256sum clients/ts/package-lock.json | cut -d' ' -f1)
if [ "$(cat clients/ts/node_modules/.podium-lock 2>/dev/null)" != "$TS_LOCK_SUM" ]; then
  say "installing the TypeScript client's npm packages (clients/ts, npm ci)"
  (cd clients/ts && npm ci --no-audit --no-fund)
  echo "$TS_LOCK_SUM" > clients/ts/node_modules/.podium-lock
fi

if [ ! -f .dev.vars ]; then
  say "creating .dev.vars from .dev.vars.example (development keys)"
  cp .dev.vars.example .dev.vars
fi

if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
  say "installing Debian's chromium for the browser tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

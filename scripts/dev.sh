#!/usr/bin/env bash
# Runs the built worker under `wrangler dev` on 127.0.0.1:8787 with local
# state persisted in .wrangler/state, and seeds demo data on first start.
set -euo pipefail
cd "$(dirname "$0")/.."
# Node 24 from the lockfile (the npm `node` package) runs every JS tool and test.
export PATH="$PWD/node_modules/.bin:$PATH"
PORT="${PORT:-8787}"
export CI="${CI:-}" WRANGLER_SEND_METRICS=false

node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT" --persist-to .wrangler/state \
  --show-interactive-dev-session=false &
WRANGLER=$!
trap 'kill $WRANGLER 2>/dev/null || true; wait $WRANGLER 2>/dev/null || true' EXIT INT TERM

node scripts/seed.mjs "http://127.0.0.1:$PORT"
echo
echo "==> Podium is running: http://127.0.0.1:$PORT/  (API: /v1/, Ctrl-C stops)"
echo "    Moving board: in another shell run 'make demo'"
wait $WRANGLER

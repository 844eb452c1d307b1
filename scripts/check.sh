#!/usr/bin/env bash
# The inner loop (issue 16): native tests (ranking core, parsing, rules,
# zones), the worker build (skipped when its inputs did not change), and the
# core end-to-end files under workerd: ingest, the pipeline, reads, boards
# and live (not the dead-letter test). Warm with nothing to rebuild, 2-3
# minutes on this 2-core machine (README); `make test` runs
# everything else (wasm tests, the other e2e files, the API check, the perf
# smoke, the browser and the deploy dry run).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH" CI="${CI:-true}" WRANGLER_SEND_METRICS=false
start=$(date +%s)
say() { printf '\n==> %s\n' "$*"; }

scripts/setup.sh
say "native tests (cargo test --release)"
log=target/check-native.log
mkdir -p target
if ! cargo test --release --quiet > "$log" 2>&1; then cat "$log"; echo "native tests failed"; exit 1; fi
grep -E "^test result" "$log"
scripts/build.sh
say "core end-to-end tests: ingest, pipeline, reads, boards, live"
# (The dead-letter test waits out the Queue's 10 retries, ~46 s: make test runs it.)
node --test --test-concurrency=1 --test-skip-pattern='dead letters' tests/e2e/ingest.test.mjs tests/e2e/pipeline.test.mjs \
  tests/e2e/reads.test.mjs tests/e2e/boards.test.mjs tests/e2e/live.test.mjs
say "inner loop passed in $(( $(date +%s) - start )) s"

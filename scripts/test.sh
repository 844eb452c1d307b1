#!/usr/bin/env bash
# Runs every test: native core tests, wasm tests under Node, the client
# libraries (clients/ts, clients/rust), the built worker end to end under
# workerd (the clients included), the page in Chromium, and a deploy dry run.
set -euo pipefail
cd "$(dirname "$0")/.."
# Node 24 from the lockfile (the npm `node` package) runs every JS tool and test.
export PATH="$PWD/node_modules/.bin:$PATH"
export PATH="$HOME/.cargo/bin:$PATH" CI="${CI:-true}" WRANGLER_SEND_METRICS=false
start=$(date +%s)
# Each `say` starts a phase; the phases' wall times are printed at the end
# (and on failure), so a slow step shows.
PHASES=()
phase_name="" phase_start=$start
end_phase() {
  if [ -n "$phase_name" ]; then PHASES+=("$(printf '%5d s  %s' "$(( $(date +%s) - phase_start ))" "$phase_name")"); fi
  phase_start=$(date +%s)
}
say() { end_phase; phase_name="$*"; printf '\n==> %s\n' "$*"; }
phases() { end_phase; phase_name=""; printf '\n==> phases (wall time)\n'; printf '%s\n' "${PHASES[@]}"; }
trap 'rc=$?; if [ "$rc" -ne 0 ]; then phases; fi' EXIT
phase_name="setup"

scripts/setup.sh --browser

say "native tests (cargo test): ranking core, parsing, rules"
cargo test --release 2>&1 | grep -v "^\s*Compiling\|^\s*Running\|^\s*Doc-tests\|^\s*Finished\|^$"

say "wasm tests (wasm-bindgen-test under Node): the JS <-> Rust boundary"
cargo test --target wasm32-unknown-unknown --test wasm_boundary 2>&1 | grep -v "^\s*Compiling"

say "worker build (scripts/build.sh; skipped when its inputs did not change)"
scripts/build.sh

say "TypeScript client: generated types and the page's bundle current, type check"
node clients/ts/scripts/check.mjs

say "tools the e2e tests drive: a private Redis, tools/load (redis-import), the Rust client"
scripts/redis.sh
nice -n 10 cargo build --release --locked --quiet --manifest-path tools/load/Cargo.toml
# The Rust client's own tests (its worker test skips without PODIUM_URL: the
# e2e file clients.test.mjs runs it against a worker), built into tools/load's
# target dir, which already holds its dependencies.
CARGO_TARGET_DIR=tools/load/target nice -n 10 cargo test --release --locked --manifest-path clients/rust/Cargo.toml 2>&1 \
  | grep -v "^\s*Compiling\|^\s*Running\|^\s*Doc-tests\|^\s*Finished\|^$"

say "the bridge's e2e test needs: RabbitMQ, redis-py and pika (.venv-bridge), tools/bridge; and its unit tests"
scripts/bridge.sh
nice -n 10 cargo test --release --locked --quiet --manifest-path tools/bridge/Cargo.toml 2>&1 | grep -E "^test result|FAILED|panicked"

say "end-to-end tests: the built worker under workerd (wrangler dev), ${E2E_JOBS:=4} files at a time"
# Each file starts its own wrangler dev on its own free ports, from its own
# copy of build/ with its own state dir (tests/harness.mjs), so files can run
# side by side. They mostly wait (the Queue's 1 s batches, retries, restarts):
# one at a time the suite took ~12 min of wall time for ~2.5 min of CPU; four
# at a time, ~4 min. E2E_JOBS=1 runs them one by one.
node --test --test-concurrency="$E2E_JOBS" --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=./tests/file-times.mjs --test-reporter-destination=stdout 'tests/e2e/*.test.mjs'

say "API check: docs/openapi.yaml linted (redocly), Schemathesis against the running worker"
# The perf smoke runs alongside it: each has its own worker, ports, state and
# Redis, neither asserts a latency, and together they take ~45 s less than one
# after the other. Its output is printed once it ends (below).
perf_log=$(mktemp /tmp/podium-perf-smoke.XXXXXX)
PERF_SMOKE=1 scripts/perf.sh > "$perf_log" 2>&1 &
perf_pid=$!
# (If the API check fails, the still running perf smoke is stopped on exit.)
trap 'rc=$?; if [ -n "$perf_pid" ]; then kill "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null; fi
  rm -f "$perf_log"; if [ "$rc" -ne 0 ]; then phases; fi' EXIT
scripts/api-check.sh

say "perf smoke (make perf in small): Podium and both Redis baselines, sums checked (ran alongside the API check)"
perf_rc=0
wait "$perf_pid" || perf_rc=$?
perf_pid=""
cat "$perf_log"
if [ "$perf_rc" -ne 0 ]; then echo "perf smoke failed (exit $perf_rc)"; exit 1; fi

say "browser tests: the page in Chromium (playwright-core)"
node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=./tests/file-times.mjs --test-reporter-destination=stdout 'tests/browser/*.test.mjs'

say "deploy dry run (wrangler deploy --dry-run)"
rm -rf dist dist.log
# A failing dry run fails the test command (its log is printed whole then).
if ! node_modules/.bin/wrangler deploy --dry-run --outdir dist > dist.log 2>&1; then
  cat dist.log; echo "deploy dry run failed"; exit 1
fi
grep -iE "upload|gzip|total|dry" dist.log
printf 'bundle: %s bytes (index.js + wasm), %s bytes gzipped\n' \
  "$(cat dist/*.js dist/*.wasm 2>/dev/null | wc -c)" "$(cat dist/*.js dist/*.wasm 2>/dev/null | gzip -9 | wc -c)"

phases
say "all tests passed in $(( $(date +%s) - start )) s"

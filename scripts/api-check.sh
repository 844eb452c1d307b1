#!/usr/bin/env bash
# Checks the built worker against its OpenAPI description (docs/openapi.yaml):
#   1. lints the description with Redocly CLI (npm devDependency);
#   2. starts the already-built worker (build/) under `wrangler dev` on a free
#      loopback port, from a private copy of build/, web/, wrangler.toml and
#      .dev.vars with its own state dir (a concurrent rebuild cannot reload it);
#   3. seeds boards, routes and events through the API, and a dead letter
#      (a test fault, on in the private copy only, fails one event's board
#      through all the Queue's retries);
#   4. runs Schemathesis (PyPI, in .venv-api) against it with the admin key:
#      no server errors, responses conform to the description (status codes,
#      content types, headers, bodies), invalid input rejected with a 4xx,
#      405 + Allow for undeclared methods, auth enforced where declared.
# Stops everything on exit; exits non-zero on any failure.
#
# It does not build: run scripts/build.sh (or make test) first.
# Knobs: API_CHECK_MAX_EXAMPLES (default 50 per operation and phase),
#        API_CHECK_SEED (replay a run: Schemathesis prints its seed),
#        API_CHECK_WORKERS (default 1: Schemathesis's workers are threads,
#          and CPython 3.11's AST builder keeps its recursion count per
#          interpreter, not per thread, so two threads that parse at once
#          (Hypothesis parses source to describe its filters) can fail with
#          "SystemError: AST constructor recursion depth mismatch"
#          (python/cpython#106905); session 15's CI run did, in Coverage),
#        API_CHECK_CHECKS (Schemathesis checks, comma-separated; default below),
#        API_CHECK_PHASES (default examples,coverage,fuzzing,stateful).
# A run's JUnit report: test-artifacts/api-check-junit.xml.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/node_modules/.bin:$PATH" CI=true WRANGLER_SEND_METRICS=false NO_COLOR=1 FORCE_COLOR=0
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
SCHEMATHESIS_VERSION=4.32.5
SPEC="$ROOT/docs/openapi.yaml"
ADMIN_KEY=dev-admin-key
INGEST_KEY=dev-ingest-key
say() { printf '\n==> %s\n' "$*"; }
start_s=$(date +%s)

if [ ! -x node_modules/.bin/redocly ] || [ ! -x node_modules/.bin/wrangler ]; then
  echo "node_modules lacks redocly or wrangler: run scripts/setup.sh first" >&2
  exit 1
fi
if ! .venv-api/bin/schemathesis --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  say "installing Schemathesis $SCHEMATHESIS_VERSION into .venv-api"
  python3 -m venv .venv-api
  .venv-api/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

say "lint: redocly lint docs/openapi.yaml"
redocly lint docs/openapi.yaml

# A concurrent rebuild removes build/ for a moment: wait for it a little.
for _ in $(seq 1 120); do
  [ -f build/index.js ] && [ -f build/index_bg.wasm ] && break
  sleep 1
done
if [ ! -f build/index.js ]; then
  echo "build/index.js is missing: run scripts/build.sh first" >&2
  exit 1
fi

TMP=$(mktemp -d /tmp/podium-api-check.XXXXXX)
APP="$TMP/app"
WRANGLER_PID=""
cleanup() {
  local rc=$?
  if [ -n "$WRANGLER_PID" ] && kill -0 "$WRANGLER_PID" 2>/dev/null; then
    # wrangler and its workerd run in their own process group (setsid).
    kill -TERM -- "-$WRANGLER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$WRANGLER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$WRANGLER_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$TMP/wrangler.log" ]; then
    echo "--- last lines of the worker's log ---"
    tail -n 40 "$TMP/wrangler.log"
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$APP" "$TMP/state"
cp -r build web wrangler.toml "$APP/"
# The events Queue gives up after 1 retry in this private copy (10 in
# wrangler.toml), so the seeded dead letter shows in ~3 s instead of ~30 s of
# idle waiting. The dead-letter reads Schemathesis checks are the same either
# way; tests/e2e/pipeline.test.mjs covers the full 10 retries.
python3 - "$APP/wrangler.toml" <<'PY'
import re, sys
p = sys.argv[1]
t = open(p).read()
block = re.compile(r'(queue = "podium-events"\n(?:[^\[\n][^\n]*\n)*?max_retries = )10\n')
t, n = block.subn(r'\g<1>1\n', t)
if n != 1:
    sys.exit("api-check: could not set max_retries of the podium-events consumer")
open(p, "w").write(t)
PY
if [ -f .dev.vars ]; then cp .dev.vars "$APP/"; else cp .dev.vars.example "$APP/.dev.vars"; fi
# Test faults on in this private copy only: one seeded event fails its board
# until it becomes a dead letter, so the dead-letter reads have one to show.
printf '\nPODIUM_TEST_FAULTS="1"\n' >> "$APP/.dev.vars"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
INSPECTOR_PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"

say "starting the built worker: wrangler dev on $BASE"
(cd "$APP" && exec setsid "$ROOT/node_modules/.bin/wrangler" dev --ip 127.0.0.1 --port "$PORT" \
  --persist-to "$TMP/state" --show-interactive-dev-session=false --inspector-port "$INSPECTOR_PORT" \
  > "$TMP/wrangler.log" 2>&1 < /dev/null) &
WRANGLER_PID=$!
for i in $(seq 1 600); do
  if ! kill -0 "$WRANGLER_PID" 2>/dev/null; then
    echo "wrangler dev exited early" >&2
    exit 1
  fi
  if curl -sf -o /dev/null --max-time 2 "$BASE/v1/health"; then break; fi
  if [ "$i" -eq 600 ]; then echo "the worker was not healthy within 60 s" >&2; exit 1; fi
  sleep 0.1
done
echo "healthy after $(( $(date +%s) - start_s )) s"

# call METHOD PATH KEY [BODY]: one seeding request; fails (printing the answer) unless it is 2xx.
call() {
  local method=$1 path=$2 key=$3 body=${4:-} status
  local args=(-s -o "$TMP/resp" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $key")
  if [ -n "$body" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$body"); fi
  status=$(curl "${args[@]}" "$BASE$path")
  if [ "${status:0:1}" != 2 ]; then
    echo "seeding failed: $method $path -> $status $(cat "$TMP/resp")" >&2
    return 1
  fi
}

say "seeding: boards likes, scratch, scratch-gone, dlq; routes like, scratch.gone; events; a dead letter"
# First, as it takes longest: an event whose board fails it (test fault, for
# the next 10 minutes) through all the Queue's retries becomes a dead letter.
until_ms=$(( ($(date +%s) + 600) * 1000 ))
call POST /v1/events "$INGEST_KEY" \
  "[{\"type\":\"hit\",\"board\":\"dlq\",\"member\":\"__fault:fail:$until_ms\",\"id\":\"dlq-1\",\"meta\":{\"why\":\"seed\"}}]"
call PUT /v1/boards/likes "$ADMIN_KEY" '{"title":"Likes","windows":["all","day","week","month"]}'
call PUT /v1/boards/scratch "$ADMIN_KEY" '{"title":"Scratch","order":"asc","op":"best","ties":"first","min":0}'
call PUT /v1/boards/scratch-gone "$ADMIN_KEY" ''
call PUT /v1/routes/like "$ADMIN_KEY" '{"targets":[{"board":"likes"}]}'
call PUT /v1/routes/scratch.gone "$ADMIN_KEY" '{"targets":[{"board":"scratch","value":1}]}'
call POST /v1/events "$INGEST_KEY" \
  '[{"type":"like","member":"alice","value":3,"meta":{"name":"Alice"}},{"type":"like","member":"bob","value":2},{"type":"like","member":"carol"},{"type":"lap","member":"alice","board":"scratch","value":61.5}]'
for i in $(seq 1 100); do
  if curl -sf "$BASE/v1/boards/likes/members/carol" > /dev/null \
     && curl -sf "$BASE/v1/boards/scratch/members/alice" > /dev/null; then break; fi
  if [ "$i" -eq 100 ]; then echo "seeded events were not applied within 10 s" >&2; exit 1; fi
  sleep 0.1
done
curl -s "$BASE/v1/boards/likes/top"; echo
# (2 deliveries about 1 s apart, then the dead-letter queue: a few seconds)
for i in $(seq 1 240); do
  if curl -s -H "Authorization: Bearer $ADMIN_KEY" "$BASE/v1/dead-letters" | grep -q '"board":"dlq"'; then break; fi
  if [ "$i" -eq 240 ]; then echo "the seeded dead letter did not show within 120 s" >&2; exit 1; fi
  sleep 0.5
done
curl -s -H "Authorization: Bearer $ADMIN_KEY" "$BASE/v1/dead-letters"; echo
echo "seeded after $(( $(date +%s) - start_s )) s"

say "schemathesis run docs/openapi.yaml against $BASE"
mkdir -p test-artifacts
# Not run: positive_data_acceptance (the API rightly refuses some schema-valid
# requests for reasons no schema states: a window the board does not keep, an
# event type with no route (422), a route naming one board twice, a plain GET
# of /live (426)); object_level_authorization (needs two users; keys are roles).
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance
checks+=,response_schema_conformance,negative_data_rejection,missing_required_header,unsupported_method,ignored_auth
checks+=,use_after_free,ensure_resource_availability,allow_header_conformance
args=(run "$SPEC" --url "$BASE" -H "Authorization: Bearer $ADMIN_KEY"
  --checks "${API_CHECK_CHECKS:-$checks}" --phases "${API_CHECK_PHASES:-examples,coverage,fuzzing,stateful}"
  --max-examples "${API_CHECK_MAX_EXAMPLES:-50}" --workers "${API_CHECK_WORKERS:-1}"
  --request-timeout 15 --generation-database none --no-color
  --report junit --report-junit-path "$ROOT/test-artifacts/api-check-junit.xml")
if [ -n "${API_CHECK_SEED:-}" ]; then args+=(--seed "$API_CHECK_SEED"); fi
set +e
(cd "$TMP" && unset FORCE_COLOR && SCHEMATHESIS_HOOKS="$ROOT/scripts/api-check-hooks.py" "$ROOT/.venv-api/bin/schemathesis" \
  --config-file "$ROOT/scripts/api-check.toml" "${args[@]}")
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  say "schemathesis found failures (exit $rc)"
  # the worker's own errors, less the seeded dead letter's test fault
  grep -i "internal error\|panicked\|uncaught" "$TMP/wrangler.log" | grep -v "test fault" | tail -n 20 || true
  exit "$rc"
fi
say "api check passed in $(( $(date +%s) - start_s )) s"

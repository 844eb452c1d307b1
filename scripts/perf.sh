#!/usr/bin/env bash
# make perf: Podium under `wrangler dev` against the Redis design it replaces,
# in one run, with the same event count and mix (issue 11). Prints figures and
# ratios; docs/perf.md says what each one means.
#
#   Python seed : scripts/perf_seed.py (redis-py; XADD pipelined -> consumer
#                 group XREADGROUP COUNT 100 -> ZINCRBY pipelined -> XACK)
#   Rust redis  : tools/load redis-baseline (the same flow, redis crate,
#                 2 producers, 2 consumers, ZINCRBY pre-aggregated per batch)
#   Podium      : tools/load podium-load against the built worker (build/)
#
# Scenarios: one board (window all), then 100 boards (window all); each event
# +1 to one member of 10,000 drawn with Zipf exponent 1.0.
#
# Env: PERF_EVENTS (default 3,000,000; smoke 4,000), PERF_SMOKE=1 (a small run
#      that fails on any sum mismatch or error; < 2 min once built),
#      PERF_BOARDS ("1 100"), PERF_MEMBERS (10000), PERF_ZIPF (1.0),
#      PERF_THREADS (podium-load senders, 4), PERF_BATCH (events/POST, 1000),
#      PERF_SETTLE (s to wait for Podium to apply, default 600; smoke 60),
#      PERF_HALF_SECONDS (length of the latency run at half the measured
#      one-board rate; default 30, 0 = skip; smoke skips it).
# Everything runs on loopback and stops by itself; Redis and wrangler are
# stopped on exit. The worker must be built (build/index.js): `make perf`
# builds it first; this script never does.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# wrangler runs on the Node of the npm `node` package (node_modules/.bin), as in scripts/test.sh.
export PATH="$ROOT/node_modules/.bin:$HOME/.cargo/bin:$PATH"

SMOKE="${PERF_SMOKE:-}"
if [ -n "$SMOKE" ] && [ "$SMOKE" != 0 ]; then
  SMOKE=1
  EVENTS="${PERF_EVENTS:-4000}"
  SETTLE="${PERF_SETTLE:-60}"
  SEND_TIMEOUT=60
  HALF_SECONDS="${PERF_HALF_SECONDS:-0}"
else
  SMOKE=""
  EVENTS="${PERF_EVENTS:-3000000}"
  SETTLE="${PERF_SETTLE:-600}"
  SEND_TIMEOUT=1800
  HALF_SECONDS="${PERF_HALF_SECONDS:-30}"
fi
BOARDS_LIST="${PERF_BOARDS:-1 100}"
MEMBERS="${PERF_MEMBERS:-10000}"
ZIPF="${PERF_ZIPF:-1.0}"
THREADS="${PERF_THREADS:-4}"
BATCH="${PERF_BATCH:-1000}"
# Bounded: the baselines give up after this long too.
BASE_TIMEOUT=$(( SETTLE + SEND_TIMEOUT ))

say() { printf '\n==> %s\n' "$*"; }
# CPU ticks (user + system, 1/100 s) used so far by a process group, or by one
# process: where a system's time goes. Reads /proc/PID/stat after the command
# name (which is in parentheses): utime and stime are then fields 12 and 13.
cpu_ticks() {
  local pids="$1" t=0 p s
  for p in $pids; do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    t=$(( t + ${12} + ${13} ))
  done
  echo "$t"
}
group_ticks() { cpu_ticks "$(pgrep -g "$1" 2>/dev/null || true)"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- prerequisites -----------------------------------------------------------
"$ROOT/scripts/redis.sh"
VENV="$ROOT/.venv-perf"
if ! "$VENV/bin/python" -c 'import redis' >/dev/null 2>&1; then
  say "creating $VENV with redis-py (PyPI)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'redis>=5,<9'
fi
if [ ! -f build/index.js ]; then
  echo "perf: build/index.js is missing: build the worker first (make build)" >&2
  exit 1
fi
if [ ! -x node_modules/.bin/wrangler ]; then
  echo "perf: node_modules/.bin/wrangler is missing: run make setup" >&2
  exit 1
fi

say "building tools/load (cargo build --release)"
t=$(date +%s)
nice -n 10 cargo build --release --locked --quiet --manifest-path tools/load/Cargo.toml
echo "   built in $(( $(date +%s) - t )) s"
LOAD="$ROOT/tools/load/target/release/podium-load"
BASELINE="$ROOT/tools/load/target/release/redis-baseline"

# --- private state, stopped and removed on exit --------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/podium-perf-XXXXXX")
RESULTS="$TMP/results.jsonl"
: > "$RESULTS"
REDIS_PID=""
WRANGLER_PID=""
stop_wrangler() {
  if [ -n "$WRANGLER_PID" ]; then
    # wrangler was started with setsid: its pid is its process group (workerd included).
    kill -TERM -- "-$WRANGLER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$WRANGLER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$WRANGLER_PID" 2>/dev/null || true
    wait "$WRANGLER_PID" 2>/dev/null || true
    WRANGLER_PID=""
  fi
}
cleanup() {
  stop_wrangler
  if [ -n "$REDIS_PID" ]; then
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Redis: loopback, no persistence -----------------------------------------
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --protected-mode yes --logfile "$TMP/redis.log" &
REDIS_PID=$!
for _ in $(seq 100); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping >/dev/null || { cat "$TMP/redis.log"; exit 1; }
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
echo "   redis $(redis-server --version | grep -o 'v=[0-9.]*') on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"

# --- Podium: a private snapshot of what wrangler serves, fresh state ---------
start_wrangler() {
  local app="$TMP/app" state="$TMP/state-$1" port inspector
  rm -rf "$app"
  mkdir -p "$app"
  cp -r build web wrangler.toml "$app/"
  if [ -f .dev.vars ]; then cp .dev.vars "$app/"; else cp .dev.vars.example "$app/.dev.vars"; fi
  port=$(free_port)
  inspector=$(free_port)
  (cd "$app" && CI=true WRANGLER_SEND_METRICS=false NO_COLOR=1 FORCE_COLOR=0 \
    exec setsid "$ROOT/node_modules/.bin/wrangler" dev --ip 127.0.0.1 --port "$port" \
      --persist-to "$state" --show-interactive-dev-session=false --inspector-port "$inspector" \
      > "$TMP/wrangler-$1.log" 2>&1) &
  WRANGLER_PID=$!
  PODIUM_URL="http://127.0.0.1:$port"
  for _ in $(seq 600); do
    if curl -fsS -m 2 "$PODIUM_URL/v1/health" >/dev/null 2>&1; then return 0; fi
    kill -0 "$WRANGLER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "perf: wrangler dev did not become healthy:" >&2
  tail -40 "$TMP/wrangler-$1.log" >&2
  return 1
}

# Runs a tool, shows its output, keeps its JSON line (tagged with the scenario)
# with the CPU seconds the server side used meanwhile: Redis's process for the
# baselines, wrangler's whole process group (workerd) for Podium.
run_tool() {
  local scenario="$1" tag="$2"; shift 2
  local out="$TMP/out-$scenario-$tag.txt" rc=0 before after server
  if [ "$tag" = seed ] || [ "$tag" = rust ]; then server="pid"; else server="group"; fi
  before=$([ "$server" = pid ] && cpu_ticks "$REDIS_PID" || group_ticks "$WRANGLER_PID")
  "$@" > "$out" || rc=$?
  after=$([ "$server" = pid ] && cpu_ticks "$REDIS_PID" || group_ticks "$WRANGLER_PID")
  grep -v '^{"tool"' "$out" || true
  local line
  line=$(grep '^{"tool"' "$out" | tail -1 || true)
  if [ -z "$line" ]; then
    echo "perf: $tag ($scenario) printed no result (exit $rc)" >&2
    line="{\"tool\":\"$tag\",\"failed\":true}"
  fi
  printf '{"scenario":"%s","run":"%s","server_cpu_s":%s,"result":%s}\n' \
    "$scenario" "$tag" "$(( after - before ))e-2" "$line" >> "$RESULTS"
}

MODE=$([ -n "$SMOKE" ] && echo "smoke" || echo "full")
say "perf ($MODE): $EVENTS events per system and scenario, $MEMBERS members (zipf $ZIPF), boards: $BOARDS_LIST"
for B in $BOARDS_LIST; do
  S="${B}b"
  say "scenario $S: $B board(s), window all"
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  run_tool "$S" seed "$VENV/bin/python" scripts/perf_seed.py --redis-url "$REDIS_URL" \
    --events "$EVENTS" --boards "$B" --members "$MEMBERS" --zipf "$ZIPF" \
    --timeout "$BASE_TIMEOUT" --label "$S"
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  run_tool "$S" rust "$BASELINE" --redis-url "$REDIS_URL" \
    --events "$EVENTS" --boards "$B" --members "$MEMBERS" --zipf "$ZIPF" \
    --timeout "$BASE_TIMEOUT" --label "$S"
  redis-cli -p "$REDIS_PORT" flushall >/dev/null

  start_wrangler "$S"
  run_tool "$S" podium "$LOAD" --url "$PODIUM_URL" --events "$EVENTS" --boards "$B" \
    --members "$MEMBERS" --zipf "$ZIPF" --threads "$THREADS" --batch "$BATCH" \
    --settle-timeout "$SETTLE" --send-timeout "$SEND_TIMEOUT" --prefix "perf$B" --label "$S"
  if [ "$B" = 1 ] && [ "$HALF_SECONDS" != 0 ]; then
    # Latency at half the maximum rate (the issue's latency target), same worker.
    HALF=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["scenario"] == sys.argv[2] and r["run"] == "podium":
        print(int(r["result"].get("applied_per_s", 0) / 2))' "$RESULTS" "$S")
    if [ "${HALF:-0}" -gt 0 ]; then
      say "scenario $S: Podium latency at half the measured rate ($HALF events/s, ${HALF_SECONDS} s)"
      run_tool "$S" podium-half "$LOAD" --url "$PODIUM_URL" --duration "$HALF_SECONDS" --rate "$HALF" \
        --boards 1 --members "$MEMBERS" --zipf "$ZIPF" --threads "$THREADS" --batch "$BATCH" \
        --settle-timeout "$SETTLE" --prefix "half1" --label "$S-half"
    fi
  fi
  stop_wrangler
done

# --- side by side ---------------------------------------------------------------
say "results"
python3 - "$RESULTS" "$SMOKE" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
smoke = sys.argv[2] == "1"
by = {}
for r in rows:
    by.setdefault(r["scenario"], {})[r["run"]] = r["result"]

def num(x):
    return f"{x:,.0f}" if isinstance(x, (int, float)) else "-"

def lat(r):
    l = (r or {}).get("latency_ms") or {}
    if l.get("p50") is None:
        return "-"
    return f"{l['p50']:.0f} / {l['p99']:.0f} ms"

def ratio(a, b):
    a = (a or {}).get("applied_per_s"); b = (b or {}).get("applied_per_s")
    return f"{a / b:.2f}x" if a and b else "-"

failures = []
cpu = {(r["scenario"], r["run"]): r.get("server_cpu_s") for r in rows}

def per_event(sc, key, r):
    c = cpu.get((sc, key))
    n = (r or {}).get("applied_events")
    return f"{c / n * 1e6:.1f}" if c and n else "-"

if smoke:
    print("(smoke run: a few thousand events; the rates below are dominated by start-up and batching delays)")
print(f"{'scenario':<9} {'system':<15} {'events/s applied':>17} {'sums':>9} {'errors':>7} {'server CPU us/event':>20}  latency p50 / p99")
for sc, runs in by.items():
    for key, name in (("seed", "Python seed"), ("rust", "Rust redis"), ("podium", "Podium"), ("podium-half", "Podium 1/2 rate")):
        r = runs.get(key)
        if r is None:
            continue
        errs = r.get("errors", 0 if r.get("error") in (None, "") else 1)
        if r.get("failed"):
            errs = "failed"
        # A 5xx or a transport error is an error even when its retry (same
        # ids) then succeeded: the server must answer 202 or a 429.
        bad = {k: v for k, v in (r.get("status") or {}).items() if int(k) >= 500}
        if r.get("transport_errors"):
            bad["transport"] = r["transport_errors"]
        shown = str(errs) + (" +" + ",".join(f"{v}x{k}" for k, v in bad.items()) if bad else "")
        if bad and errs == 0:
            errs = shown
        check = r.get("sum_check", "-")
        print(f"{sc:<9} {name:<15} {num(r.get('applied_per_s')):>17} {check:>9} {shown:>7} {per_event(sc, key, r):>20}  {lat(r)}")
        if r.get("failed") or check != "ok" or (errs not in (0, None)) or (key.startswith("podium") and not r.get("settled")):
            failures.append(f"{sc} {name}: sums {check}, errors {errs}, settled {r.get('settled', '-')}")
    p = runs.get("podium")
    print(f"{sc:<9} {'ratios':<15} Podium / Python seed {ratio(p, runs.get('seed'))}, Podium / Rust redis {ratio(p, runs.get('rust'))}")
    if p and not p.get("failed"):
        print(f"{'':<9} {'':<15} Podium accepted {num(p.get('accepted_per_s'))} events/s; statuses {json.dumps(p.get('status'))}, "
              f"429 retries {p.get('retries_429')}, applied read from '{p.get('applied_mode')}', "
              f"load tool CPU {p.get('client_cpu_seconds')} s")
        live_err = (p.get("latency_ms") or {}).get("live_error")
        if live_err:
            print(f"{'':<9} {'':<15} live viewer: {live_err}")
print()
print("latency: Podium = ingest -> visible at a live WebSocket viewer (probe board, under the load);")
print("         Redis = XADD -> ZINCRBY applied in the consumer (no viewer).")
print("server CPU: redis-server's CPU (baselines; clients not counted) or wrangler's process group's")
print("         (Podium: workerd, all of the worker's work) during the run, per applied event.")
if failures:
    print("FAILED checks:")
    for f in failures:
        print("  " + f)
    sys.exit(1)
print("all sums exact, no errors")
EOF

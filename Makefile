# The two commands: `make dev` runs the service locally with demo data,
# `make test` runs every test (7-8 min warm on 2 cores, session 10; the
# e2e files four at a time, E2E_JOBS). Both install what they need first.
# `make check` is the inner loop: native tests and the core e2e files (158 s warm, session 8).
.PHONY: check dev test setup build bench demo deploy test-native test-wasm test-e2e test-browser deploy-check perf soak

dev: setup build
	scripts/dev.sh

test:
	scripts/test.sh

check:
	scripts/check.sh

setup:
	scripts/setup.sh

build:
	scripts/build.sh

bench:
	scripts/bench.sh

# Podium under wrangler dev vs the Redis stream->ZINCRBY design, side by side
# (docs/perf.md). PERF_SMOKE=1 for a small run; PERF_EVENTS to size it.
perf: setup build
	scripts/perf.sh

# Soak (issue 12): 10 minutes at a steady rate with readers and 100 live
# viewers on loopback; reports sent/acknowledged/visible and workerd's memory.
# SOAK_SECONDS, SOAK_RATE, SOAK_VIEWERS to size it.
soak: setup build
	node scripts/soak.mjs

# Steady random traffic against a running instance (default http://127.0.0.1:8787).
demo:
	node scripts/demo-traffic.mjs

deploy: setup build
	npx wrangler deploy

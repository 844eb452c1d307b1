# The two commands: `make dev` runs the service locally with demo data,
# `make test` runs every test. Both install what they need first.
.PHONY: dev test setup build bench demo deploy test-native test-wasm test-e2e test-browser deploy-check

dev: setup build
	scripts/dev.sh

test:
	scripts/test.sh

setup:
	scripts/setup.sh

build:
	scripts/build.sh

bench:
	scripts/bench.sh

# Steady random traffic against a running instance (default http://127.0.0.1:8787).
demo:
	node scripts/demo-traffic.mjs

deploy: setup build
	npx wrangler deploy

#!/usr/bin/env bash
# What the bridge's e2e test (tests/e2e/bridge.test.mjs) and its throughput
# measurement (scripts/bridge-perf.mjs) need, installed when missing:
# redis-server and rabbitmq-server (Debian), a venv with the seeds' Python
# clients (redis-py, pika; PyPI) and the podium-bridge binary (tools/bridge).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/redis.sh
scripts/rabbitmq.sh
VENV=.venv-bridge
if ! "$VENV/bin/python" -c 'import redis, pika' >/dev/null 2>&1; then
  echo "==> creating $VENV with redis-py and pika (PyPI)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'redis>=5,<9' 'pika>=1.3,<2'
fi
echo "==> building tools/bridge (podium-bridge, cargo build --release)"
nice -n 10 cargo build --release --locked --quiet --manifest-path tools/bridge/Cargo.toml

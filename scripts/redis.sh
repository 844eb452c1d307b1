#!/usr/bin/env bash
# Installs redis-server and redis-cli when missing (Debian/Ubuntu apt): the
# perf baselines and the Redis import e2e test run a private Redis.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "==> installing redis-server, redis-tools (Debian)"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null

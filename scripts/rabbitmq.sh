#!/usr/bin/env bash
# Installs rabbitmq-server (with its Erlang) when missing (Debian/Ubuntu apt):
# the bridge's e2e test (tests/e2e/bridge.test.mjs) and its throughput
# measurement run a private RabbitMQ on loopback, with their own node name,
# ports, Erlang cookie and data dir under a temp dir.
#
# The package's own system service is never started: it would listen on
# 0.0.0.0:5672 under the shared node name rabbit@<host>. Where the machine has
# no policy-rc.d already refusing service starts (containers usually do), one
# is put in place for the install only and removed afterwards.
set -euo pipefail
if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || command -v rabbitmq-server >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=""
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  OWN_POLICY=1
fi
cleanup() { if [ -n "$OWN_POLICY" ]; then $SUDO rm -f "$POLICY"; fi; }
trap cleanup EXIT
echo "==> installing rabbitmq-server (Debian; brings Erlang, ~40 MB)"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null

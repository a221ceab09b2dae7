#!/usr/bin/env bash
# Installs the servers that integration tests start themselves (see test/support/servers.ts), and
# Chromium, which the console's end-to-end tests drive headless (test/e2e/console.test.ts).
# setpriv, used to run the servers, comes with util-linux, which every Debian has.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends redis-server clickhouse-server postgresql-15 \
  chromium fonts-liberation

# The packages may start system-wide instances on the default ports; tests run their own.
service redis-server stop || true
service clickhouse-server stop || true
service postgresql stop || true

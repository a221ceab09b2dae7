#!/usr/bin/env bash
# Installs the servers that integration tests start themselves (see test/support/servers.ts).
# setpriv, used to run them, comes with util-linux, which every Debian has.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends redis-server clickhouse-server postgresql-15

# The packages may start system-wide instances on the default ports; tests run their own.
service redis-server stop || true
service clickhouse-server stop || true
service postgresql stop || true

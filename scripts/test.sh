#!/usr/bin/env bash
# Install what the tests need (BIND 9, PowerDNS, the package with its test extras) and run
# ruff, mypy and pytest. CI runs this through .ci/run on a clean clone, as root.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "Cannot run '$*': not root and no sudo. Install BIND 9 (bind9, bind9-utils) by hand." >&2
    return 1
  fi
}

if ! command -v named >/dev/null || ! command -v ip >/dev/null; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    bind9 bind9-utils dnsutils pdns-server pdns-backend-sqlite3 iproute2 >/dev/null
fi

# The two-server BIND test needs 127.0.0.2 and 127.0.0.3 on the loopback interface.
for address in 127.0.0.2 127.0.0.3; do
  if ! ip -o addr show dev lo | grep -q " $address/"; then
    as_root ip addr add "$address/32" dev lo || echo "Could not add $address to lo." >&2
  fi
done

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[test]'

.venv/bin/ruff check o365dkim
.venv/bin/ruff format --check o365dkim
.venv/bin/mypy
.venv/bin/pytest "$@"

#!/usr/bin/env bash
# Regenerates dashboards/*.json with scripts/e2e/gen_dashboards.py (Grafana's typed builders,
# grafana-foundation-sdk), installed at a pinned version into a virtual environment under target/.
# Usage (from anywhere): scripts/e2e/gen_dashboards.sh
# Installs the Debian package python3-venv when `python3 -m venv` is not available.
set -euo pipefail
cd "$(dirname "$0")/../.."

SDK_VERSION='1769699379!11.6.0'   # grafana-foundation-sdk for Grafana 11.6
VENV=target/gen-venv

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import grafana_foundation_sdk' 2>/dev/null \
   || [ "$("$VENV/bin/python" -m pip show grafana-foundation-sdk 2>/dev/null | sed -n 's/^Version: //p')" != "$SDK_VERSION" ]; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    echo "== installing python3-venv"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends python3-venv
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "grafana-foundation-sdk==$SDK_VERSION"
fi

exec "$VENV/bin/python" scripts/e2e/gen_dashboards.py "$@"

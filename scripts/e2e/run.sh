#!/usr/bin/env bash
# End-to-end test of dashboards/ and alerts/ against a real Prometheus.
# Usage (from anywhere): scripts/e2e/run.sh      (E2E_KEEP=1 keeps the temporary directory)
# Installs the Debian package `prometheus` (prometheus + promtool) if missing, builds the exporter
# (cargo build --release, a no-op when up to date), then runs scripts/e2e/e2e.py.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  echo "== installing prometheus (Debian package, provides promtool)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends prometheus \
    || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends prometheus; }
fi

if command -v cargo >/dev/null; then
  echo "== cargo build --release"
  cargo build --release --quiet
elif [ ! -x target/release/opretail-exporter ]; then
  echo "target/release/opretail-exporter is missing and cargo is not installed" >&2
  exit 1
fi

exec python3 scripts/e2e/e2e.py "$@"

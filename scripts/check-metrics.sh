#!/usr/bin/env bash
# Starts the demo on a free loopback port, waits until it is ready, and runs
# `promtool check metrics` on its /metrics. Usage: scripts/check-metrics.sh [BINARY]
set -euo pipefail
bin=${1:-target/debug/opretail-exporter}
log=$(mktemp)
source "$(dirname "$0")/lib.sh"
PID=""
trap '[ -z "$PID" ] || { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }; rm -f "$log"' EXIT
start_logged "$log" "$bin" demo --web.listen-address 127.0.0.1:0 --log.format json
addr=$ADDR
for _ in $(seq 1 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/-/ready")" = 200 ] && break
  sleep 0.1
done
body=$(curl -sf "http://$addr/metrics")
series=$(grep -c '^opretail_' <<<"$body" || true)
echo "demo /metrics at $addr: $series opretail_* samples"
promtool check metrics <<<"$body"
echo "promtool check metrics: clean"

#!/usr/bin/env bash
# Starts the demo on a free loopback port, waits until it is ready, and runs
# `promtool check metrics` on its /metrics. Usage: scripts/check-metrics.sh [BINARY]
set -euo pipefail
bin=${1:-target/debug/opretail-exporter}
log=$(mktemp)
"$bin" demo --web.listen-address 127.0.0.1:0 --log.format json 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
addr=""
for _ in $(seq 1 300); do
  addr=$(grep -o '"addr":"[^"]*"' "$log" | head -n1 | cut -d'"' -f4 || true)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "demo exited early" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { cat "$log"; echo "demo did not report its address" >&2; exit 1; }
for _ in $(seq 1 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/-/ready")" = 200 ] && break
  sleep 0.1
done
body=$(curl -sf "http://$addr/metrics")
series=$(grep -c '^opretail_' <<<"$body" || true)
echo "demo /metrics at $addr: $series opretail_* samples"
promtool check metrics <<<"$body"
echo "promtool check metrics: clean"

#!/usr/bin/env bash
# Backfill end to end with promtool: runs the simulated gateway on a free loopback port,
# backfills three complete past days from it, turns the OpenMetrics into TSDB blocks with
# `promtool tsdb create-blocks-from openmetrics`, dumps them with `promtool tsdb dump`, and
# checks the sample count and one known sample (walk-ins of shop 9604 at 12:00 two days ago,
# as `fetch` reports it from the same gateway).
# Usage: scripts/backfill-e2e.sh [BINARY]
set -euo pipefail
bin=${1:-target/debug/opretail-exporter}
work=$(mktemp -d)
source "$(dirname "$0")/lib.sh"
PID=""
trap '[ -z "$PID" ] || { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }; rm -rf "$work"' EXIT
start_logged "$work/sim.log" "$bin" simulate --listen 127.0.0.1:0 --log.format json
addr=$ADDR

cat >"$work/config.yaml" <<EOF
gateway:
  url: http://$addr/m.api
  app_key: demo
  app_secret: demo-secret
timezone: Asia/Shanghai
shops:
  - id: O_1001
  - id: O_1002
devices:
  - mac: d47c44906f01
    name: Entrance A
    shop_id: "9601"
EOF

# Shop-local (Asia/Shanghai) dates, as the simulator serves them.
day() { TZ=Asia/Shanghai date -d "$1 days ago" +%F; }
from=$(day 3) to=$(day 1) probe=$(day 2)

"$bin" backfill --config "$work/config.yaml" --from "$from" --to "$to" --output "$work/history.om" 2>"$work/backfill.log" \
  || { cat "$work/backfill.log"; echo "backfill failed" >&2; exit 1; }
cat "$work/backfill.log"
written=$(sed -n 's/.*: \([0-9]*\) samples (.*/\1/p' "$work/backfill.log")
# 20 shops and 1 device, 72 hours each
grep -q "(1440 shop hours, 72 device hours)" "$work/backfill.log" || { echo "unexpected hour counts" >&2; exit 1; }

promtool tsdb create-blocks-from openmetrics "$work/history.om" "$work/data" >"$work/blocks.log"
blocks=$(find "$work/data" -mindepth 1 -maxdepth 1 -type d | wc -l)
echo "promtool created $blocks blocks"
mkdir -p "$work/data/wal"  # `tsdb dump` opens the directory as a database
promtool tsdb dump "$work/data" >"$work/dump.txt"
dumped=$(wc -l <"$work/dump.txt")
echo "promtool tsdb dump: $dumped samples (backfill wrote $written)"
[ "$dumped" = "$written" ] || { echo "sample count differs" >&2; exit 1; }

# The known sample: the gateway's own answer for that hour, via fetch.
expected=$("$bin" fetch --config "$work/config.yaml" --id S_9604 --date "$probe" | awk -v t="12:00:00" '$2 == t { print $3 }')
ts_ms=$(( $(TZ=Asia/Shanghai date -d "$probe 12:00" +%s) * 1000 ))
line=$(grep '__name__="opretail_shop_walk_in"' "$work/dump.txt" | grep 'shop_id="9604"' | grep " $ts_ms\$" || true)
echo "known sample: $line"
[ -n "$expected" ] && [ "$line" != "" ] && [ "$(awk '{print $(NF-1)}' <<<"$line")" = "$expected" ] \
  || { echo "expected opretail_shop_walk_in{shop_id=\"9604\"} $expected @ $ts_ms" >&2; exit 1; }
echo "backfill e2e: clean"
